//! The merge engine (placeholder, filled in by the engine work).

/// Errors rendering a document.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {}
