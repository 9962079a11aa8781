//! Supervisors' time-limited blocks of a contact's pseudonym, as stored in Redis: one string per
//! blocked pseudonym that expires by itself, so no block outlives its time and none needs a sweep.

use redis::AsyncCommands;

use super::Store;
use crate::error::StoreError;

impl Store {
    /// Blocks `pseudonym` for `seconds` (a later block replaces an earlier one's time).
    pub async fn block_pseudonym(&self, pseudonym: &str, seconds: u64) -> Result<(), StoreError> {
        let _: () = self
            .conn()
            .set_ex(self.keys.block(pseudonym), 1, seconds)
            .await?;
        Ok(())
    }

    /// Seconds left on `pseudonym`'s block, if it is blocked.
    pub async fn blocked_for(&self, pseudonym: &str) -> Result<Option<u64>, StoreError> {
        let ttl: i64 = self.conn().ttl(self.keys.block(pseudonym)).await?;
        Ok(u64::try_from(ttl).ok().filter(|s| *s > 0))
    }
}
