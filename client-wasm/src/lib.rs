//! MediBlock's browser client, compiled to WebAssembly.
//!
//! For now it exposes the shared protocol's pure checks (template validation and hashing)
//! to JavaScript; key storage, sealing and the wallet path follow with the web app.

use mediblock_protocol::template::Template;
use wasm_bindgen::prelude::*;

/// The keccak256 hash of a template given as JSON, as lowercase hex; the error names the
/// first invariant the template breaks.
#[wasm_bindgen(js_name = templateHash)]
pub fn template_hash(template_json: &str) -> Result<String, JsValue> {
    let template: Template =
        serde_json::from_str(template_json).map_err(|e| JsValue::from_str(&e.to_string()))?;
    Ok(hex::encode(template.hash()))
}
