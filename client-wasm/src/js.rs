//! Conversions between JavaScript values and Rust types, and small helpers over browser
//! globals. Objects cross as plain JSON-like objects (never `Map`s), so pages can read them
//! like the relay's JSON answers.

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast as _, JsValue};

use crate::error::{ClientError, Result};

/// A Rust value as a plain JavaScript value (objects, arrays, numbers, strings).
pub(crate) fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| ClientError::new("internal", format!("Cannot convert a result: {e}")))
}

/// A JavaScript value as `T`; `what` names it in the error (e.g. "the template").
pub(crate) fn from_js<T: DeserializeOwned>(value: JsValue, what: &str) -> Result<T> {
    serde_wasm_bindgen::from_value(value)
        .map_err(|e| ClientError::invalid(format!("{what} is not valid: {e}.")))
}

/// Property `key` of `obj` (`undefined` when absent or `obj` is no object).
pub(crate) fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    js_sys::Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// Property `key` of `obj` as a string, `None` when absent, `null` or not a string.
pub(crate) fn get_str(obj: &JsValue, key: &str) -> Option<String> {
    get(obj, key).as_string()
}

/// Property `key` of `obj` as a number, `None` when absent or not a number.
pub(crate) fn get_f64(obj: &JsValue, key: &str) -> Option<f64> {
    get(obj, key).as_f64()
}

/// A JavaScript number as a `u64`, when it is a non-negative safe integer.
pub(crate) fn as_u64(v: f64) -> Option<u64> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if (0.0..=MAX_SAFE).contains(&v) && v.fract() == 0.0 {
        // In range and integral, so the conversion is exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(v as u64)
    } else {
        None
    }
}

/// `Date.now()`.
pub(crate) fn now_ms() -> u64 {
    as_u64(js_sys::Date::now()).unwrap_or(0)
}

/// The page's `window`, or an error for contexts without one (workers).
pub(crate) fn window() -> Result<web_sys::Window> {
    web_sys::window().ok_or_else(|| {
        ClientError::new(
            "no_window",
            "This function needs a browser window (it cannot run in a worker).",
        )
    })
}

/// The `message` of a thrown JavaScript value, for error sentences.
pub(crate) fn message_of(err: &JsValue) -> String {
    if let Some(e) = err.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    if let Some(m) = get_str(err, "message") {
        return m;
    }
    err.as_string()
        .unwrap_or_else(|| "unknown error".to_owned())
}

/// Awaits a JavaScript promise.
pub(crate) async fn await_promise(p: js_sys::Promise) -> core::result::Result<JsValue, JsValue> {
    wasm_bindgen_futures::JsFuture::from(p).await
}

/// Resolves after `ms` milliseconds (a back-off between reconnections, not a
/// synchronisation).
pub(crate) async fn delay(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        } else {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    let _ = await_promise(promise).await;
}
