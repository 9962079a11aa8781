//! The day counters behind the dashboard's figures (answered, abandoned, waits) and the live
//! conversations of a set of counsellors. Only times and durations are written: no conversation
//! id, no pseudonym, no text.

use super::Store;
use crate::error::StoreError;

/// How long the day counters are kept.
const KEEP_S: i64 = 8 * 24 * 3600;

/// The UTC day (`YYYY-MM-DD`) of a time in ms.
pub fn utc_day(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map(|t| {
            let d = t.date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        })
        .unwrap_or_default()
}

/// The UTC days that overlap `[since_ms, until_ms]`, oldest first.
fn days_between(since_ms: i64, until_ms: i64) -> Vec<String> {
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let mut days = Vec::new();
    let mut t = since_ms - since_ms.rem_euclid(DAY_MS);
    while t <= until_ms && days.len() < 8 {
        days.push(utc_day(t));
        t += DAY_MS;
    }
    days
}

impl Store {
    /// Counts a first answer at `at_ms` after `wait_ms` in the queue.
    pub async fn record_answer(&self, at_ms: i64, wait_ms: i64) -> Result<(), StoreError> {
        let key = self.keys.stats_answered(&utc_day(at_ms));
        let nonce: u32 = rand::random();
        let member = format!("{at_ms}:{}:{nonce:08x}", wait_ms.max(0));
        self.add_stat(&key, at_ms, &member).await
    }

    /// Counts a conversation that ended before anyone answered it.
    pub async fn record_abandon(&self, at_ms: i64) -> Result<(), StoreError> {
        let key = self.keys.stats_abandoned(&utc_day(at_ms));
        let nonce: u32 = rand::random();
        self.add_stat(&key, at_ms, &format!("{at_ms}:{nonce:08x}"))
            .await
    }

    async fn add_stat(&self, key: &str, at_ms: i64, member: &str) -> Result<(), StoreError> {
        let _: () = redis::pipe()
            .zadd(key, member, at_ms)
            .ignore()
            .expire(key, KEEP_S)
            .ignore()
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// The waits (ms) of the answers, and the number of abandoned conversations, since `since_ms`.
    pub async fn figures_since(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<(Vec<i64>, u64), StoreError> {
        let days = days_between(since_ms, until_ms);
        if days.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let mut answers = redis::pipe();
        let mut abandons = redis::pipe();
        for day in &days {
            answers.zrangebyscore(self.keys.stats_answered(day), since_ms, until_ms);
            abandons.zcount(self.keys.stats_abandoned(day), since_ms, until_ms);
        }
        let mut conn = self.conn();
        let answered: Vec<Vec<String>> = answers.query_async(&mut conn).await?;
        let abandoned: Vec<u64> = abandons.query_async(&mut conn).await?;
        let waits = answered
            .iter()
            .flatten()
            .filter_map(|m| m.split(':').nth(1)?.parse().ok())
            .collect();
        Ok((waits, abandoned.iter().sum()))
    }

    /// The active conversations of each of `usernames`, in the same order.
    pub async fn active_of(&self, usernames: &[String]) -> Result<Vec<Vec<String>>, StoreError> {
        if usernames.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for u in usernames {
            pipe.smembers(self.keys.agent_convs(u));
        }
        Ok(pipe.query_async(&mut self.conn()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_cover_the_range() {
        // 2024-03-01T23:00Z to 2024-03-02T01:00Z spans two UTC days.
        let since = 1_709_334_000_000;
        let until = since + 2 * 3600 * 1000;
        assert_eq!(days_between(since, until), ["2024-03-01", "2024-03-02"]);
        assert_eq!(utc_day(0), "1970-01-01");
    }
}
