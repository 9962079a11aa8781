//! TEMPORARY stand-in until the notices land (same API).
pub struct Notices;
#[derive(Debug, thiserror::Error)]
#[error("notices")]
pub struct NoticeError;
impl Notices {
    pub fn builtin() -> Result<Notices, NoticeError> {
        Ok(Notices)
    }
    pub fn text(&self, _lang: &str, code: &str, _vars: &[(&str, &str)]) -> String {
        code.to_owned()
    }
    pub fn has(&self, _lang: &str, _code: &str) -> bool {
        true
    }
}
