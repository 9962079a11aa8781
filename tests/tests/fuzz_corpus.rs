//! Replays the saved fuzz corpus (`fuzz/corpus/TARGET/`) through the fuzz targets' own entry
//! functions on stable Rust, so every input libFuzzer ever kept, and every crash it found (saved
//! there once fixed), stays a regression test in CI. Takes well under a second.

#[path = "../../fuzz/src/targets.rs"]
mod targets;

use std::path::PathBuf;

fn replay(target: &str, entry: fn(&[u8])) -> anyhow::Result<()> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut count = 0;
    for file in std::fs::read_dir(&dir)? {
        let path = file?.path();
        let data = std::fs::read(&path)?;
        // A panic names the input, so it can be run again with `cargo fuzz run TARGET FILE`.
        eprintln!("{}", path.display());
        entry(&data);
        count += 1;
    }
    anyhow::ensure!(
        count >= 10,
        "{target}: only {count} corpus files in {}; the corpus should be checked in",
        dir.display()
    );
    Ok(())
}

#[test]
fn contact_frame_corpus() -> anyhow::Result<()> {
    replay("contact_frame", targets::contact_frame)
}

#[test]
fn staff_frame_corpus() -> anyhow::Result<()> {
    replay("staff_frame", targets::staff_frame)
}

#[test]
fn telegram_update_corpus() -> anyhow::Result<()> {
    replay("telegram_update", targets::telegram_update)
}

#[test]
fn twilio_webhook_corpus() -> anyhow::Result<()> {
    replay("twilio_webhook", targets::twilio_webhook)
}

#[test]
fn vault_open_corpus() -> anyhow::Result<()> {
    replay("vault_open", targets::vault_open)
}
