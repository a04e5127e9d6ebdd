//! `[sanitize]`: prompt-injection thresholds and actions, personal-data
//! masking.

use serde::Deserialize;

use super::{Check, ConfigError};

/// What happens to a chunk suspected of carrying a prompt injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InjectionAction {
    /// Keep it, and say so in the response.
    Annotate,
    /// Keep it, lower its score (and say so).
    Downrank,
    /// Never put it in a prompt (and say so).
    Quarantine,
}

/// What happens to a question that itself looks like an injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryInjectionAction {
    /// Answer, with the question flagged in the response.
    Annotate,
    /// Refuse with `query_refused`.
    Refuse,
}

/// `[sanitize]`: injection thresholds and actions, personal-data masking.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SanitizeConfig {
    /// Detector score at or above which a chunk or question is "suspected".
    #[serde(default = "default_suspected")]
    pub injection_threshold: f32,
    /// Score at or above which `on_high` applies instead of `on_suspected`.
    #[serde(default = "default_high")]
    pub injection_high: f32,
    /// What happens to a chunk scored at or above `injection_threshold`.
    #[serde(default = "default_on_suspected")]
    pub on_suspected: InjectionAction,
    /// What happens to a chunk scored at or above `injection_high`.
    #[serde(default = "default_on_high")]
    pub on_high: InjectionAction,
    /// Score multiplier for `downrank`.
    #[serde(default = "default_downrank")]
    pub downrank_factor: f32,
    /// What happens to a question that looks like an injection.
    #[serde(default = "default_on_query")]
    pub on_query_injection: QueryInjectionAction,
    /// Mask personal data before it goes to a provider with `locality = "cloud"`.
    #[serde(default = "super::default_true")]
    pub pii_mask_cloud: bool,
    /// Mask personal data before it goes to a provider with `locality = "local"`.
    #[serde(default)]
    pub pii_mask_local: bool,
    /// Which kinds of personal data are masked.
    #[serde(default = "default_pii_types")]
    pub pii_types: Vec<crate::sanitize::pii::PiiKind>,
}

impl Default for SanitizeConfig {
    fn default() -> Self {
        SanitizeConfig {
            injection_threshold: default_suspected(),
            injection_high: default_high(),
            on_suspected: default_on_suspected(),
            on_high: default_on_high(),
            downrank_factor: default_downrank(),
            on_query_injection: default_on_query(),
            pii_mask_cloud: true,
            pii_mask_local: false,
            pii_types: default_pii_types(),
        }
    }
}

fn default_suspected() -> f32 {
    0.5
}
fn default_high() -> f32 {
    0.8
}
fn default_on_suspected() -> InjectionAction {
    InjectionAction::Downrank
}
fn default_on_high() -> InjectionAction {
    InjectionAction::Quarantine
}
fn default_downrank() -> f32 {
    0.5
}
fn default_on_query() -> QueryInjectionAction {
    QueryInjectionAction::Annotate
}
fn default_pii_types() -> Vec<crate::sanitize::pii::PiiKind> {
    crate::sanitize::pii::PiiKind::ALL.to_vec()
}

impl SanitizeConfig {
    pub(super) fn validate(&self, c: &Check) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.injection_threshold) {
            return Err(c.invalid("sanitize.injection_threshold", "must be between 0 and 1"));
        }
        if !(self.injection_threshold..=1.0).contains(&self.injection_high) {
            return Err(c.invalid(
                "sanitize.injection_high",
                "must be between injection_threshold and 1",
            ));
        }
        if !(0.0..=1.0).contains(&self.downrank_factor) {
            return Err(c.invalid("sanitize.downrank_factor", "must be between 0 and 1"));
        }
        Ok(())
    }
}
