//! Talking to the relay from the browser: requests over gloo-net (`fetch`) that speak the
//! relay's error shape (`{code, message, details}`), and following a submission's state over
//! its server-sent-events stream (read from a `fetch` body, since `EventSource` cannot send
//! the `Authorization` header that `GET /api/v1/submissions/{tid}/events` requires).

use gloo_net::http::{Headers, Method, Request, RequestBuilder, Response};
use mediblock_protocol::ids::TxId;
use mediblock_protocol::rules::Violation;
use wasm_bindgen::prelude::*;

use crate::error::{ClientError, Result, ViolationView, capitalise};
use crate::js::{self, await_promise, get, get_str};

/// How often `followStatus` reconnects after the stream ends without a final state.
const MAX_RECONNECTS: u32 = 30;

pub(crate) fn unreachable_relay() -> ClientError {
    ClientError::new(
        "relay_unreachable",
        "The relay cannot be reached. Check the network connection and try again.",
    )
}

/// A request to the relay with the bearer token. The `Authorization` header goes through
/// `web_sys::Headers::set`, which fails on a token that cannot be a header value (a line
/// break, a character above U+00FF) where gloo-net's own `header` would throw past this
/// crate; such a request fails like the network, as every other fault before an answer.
fn request(url: &str, method: &str, token: Option<&str>) -> Result<RequestBuilder> {
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| unreachable_relay())?;
    let headers = web_sys::Headers::new().map_err(|_| unreachable_relay())?;
    if let Some(token) = token {
        headers
            .set("Authorization", &format!("Bearer {token}"))
            .map_err(|_| unreachable_relay())?;
    }
    Ok(RequestBuilder::new(url)
        .method(method)
        .headers(Headers::from_raw(headers)))
}

/// Sends a request to the relay; no answer at all is `relay_unreachable`.
async fn send(request: Result<Request, gloo_net::Error>) -> Result<Response> {
    request
        .map_err(|_| unreachable_relay())?
        .send()
        .await
        .map_err(|_| unreachable_relay())
}

/// The relay's error answer as a [`ClientError`] (`code` from its body, `status`, and every
/// violation of a `rule_violation`).
async fn relay_error(response: &Response) -> ClientError {
    let status = response.status();
    let body: serde_json::Value = match response.text().await {
        Ok(t) => serde_json::from_str(&t).unwrap_or(serde_json::Value::Null),
        Err(_) => return unreachable_relay().with_status(status),
    };
    let code = body["code"].as_str().unwrap_or("relay_error").to_owned();
    let relay_message = body["message"].as_str().unwrap_or("");
    let message = match code.as_str() {
        "unauthenticated" => {
            "Sign-in failed or your session has ended; please sign in again.".to_owned()
        }
        "internal" => "The relay had an internal error; try again later.".to_owned(),
        _ if status >= 500 => format!(
            "The relay cannot do this now ({}). Try again later.",
            if relay_message.is_empty() {
                "no reason given"
            } else {
                relay_message
            }
        ),
        _ if relay_message.is_empty() => format!("The relay refused the request (HTTP {status})."),
        _ => format!(
            "The relay refused the request: {}",
            capitalise(relay_message)
        ),
    };
    let mut err = ClientError::new(code.clone(), message).with_status(status);
    if let Some(details) = body.get("details").filter(|d| !d.is_null()) {
        if code == "rule_violation"
            && let Ok(violations) = serde_json::from_value::<Vec<Violation>>(details.clone())
        {
            let views: Vec<ViolationView> = violations
                .iter()
                .map(|v| crate::form::describe(v, None))
                .collect();
            err = err.with_violations(views);
        }
        err = err.with_details(details.clone());
    }
    err
}

fn request_body(body: &JsValue) -> Result<Option<JsValue>> {
    if body.is_undefined() || body.is_null() {
        return Ok(None);
    }
    if body.is_instance_of::<js_sys::Uint8Array>() || body.is_string() {
        return Ok(Some(body.clone()));
    }
    js_sys::JSON::stringify(body)
        .map(|s| Some(s.into()))
        .map_err(|_| ClientError::invalid("The request body cannot be sent as JSON."))
}

async fn call(
    base: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: &JsValue,
) -> Result<JsValue> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let body = request_body(body)?;
    let builder = request(&url, method, token)?;
    let response = send(match body {
        Some(body) => builder
            .header("Content-Type", "application/json")
            .body(body),
        None => builder.build(),
    })
    .await?;
    if !response.ok() {
        return Err(relay_error(&response).await);
    }
    let text = response.text().await.map_err(|_| unreachable_relay())?;
    if text.is_empty() {
        return Ok(JsValue::NULL);
    }
    Ok(js_sys::JSON::parse(&text).unwrap_or_else(|_| JsValue::from_str(&text)))
}

/// `api(relayBase, token, method, path, body?)`: JSON in and out with the bearer token;
/// a `Uint8Array` body (from `seal`) is sent as is. A non-2xx answer throws an `Error` with
/// the relay's `code`, a readable `message`, `status`, and `details` (and `violations`
/// for a `rule_violation`). No connection is `relay_unreachable`.
#[wasm_bindgen]
pub async fn api(
    relay_base: String,
    token: Option<String>,
    method: String,
    path: String,
    body: JsValue,
) -> Result<JsValue> {
    call(&relay_base, token.as_deref(), &method, &path, &body).await
}

fn is_final(view: &JsValue) -> bool {
    matches!(
        get_str(view, "state").as_deref(),
        Some("stored" | "rejected")
    )
}

/// One server-sent event's `event` name and `data`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SseEvent {
    /// `event:` (empty when absent).
    pub event: String,
    /// `data:` lines joined with newlines.
    pub data: String,
}

/// Takes the complete events off the front of `buf` (events end with a blank line);
/// comments (keep-alives) are skipped, an incomplete tail stays in `buf`.
pub fn take_events(buf: &mut Vec<u8>) -> Vec<SseEvent> {
    let mut out = Vec::new();
    loop {
        let Some(end) = find_blank_line(buf) else {
            return out;
        };
        let block: Vec<u8> = buf.drain(..end.1).collect();
        let text = String::from_utf8_lossy(&block[..end.0]);
        let mut event = SseEvent {
            event: String::new(),
            data: String::new(),
        };
        let mut has_data = false;
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => event.event = value.to_owned(),
                "data" => {
                    if has_data {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                    has_data = true;
                }
                _ => {}
            }
        }
        if has_data {
            out.push(event);
        }
    }
}

/// (end of the block, end of the separator) of the first blank line.
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' && buf[i + 1] == b'\n' {
            return Some((i, i + 2));
        }
        if buf[i] == b'\n' && buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
            return Some((i, i + 3));
        }
        i += 1;
    }
    None
}

/// Reads the event stream until a final state (returned) or its end (`None`).
///
/// The request goes through gloo-net like every other (it carries the `Authorization`
/// header, which `EventSource` cannot); gloo-net has no reader for a body that is still
/// arriving, so the body's `ReadableStream` is read here with web-sys, chunk by chunk.
async fn stream_once(
    url: &str,
    token: &str,
    on_update: &js_sys::Function,
) -> Result<Option<JsValue>> {
    let response = send(request(url, "GET", Some(token))?.build()).await?;
    if !response.ok() {
        return Err(relay_error(&response).await);
    }
    let Some(body) = response.body() else {
        return Ok(None);
    };
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut buf = Vec::new();
    loop {
        let Ok(chunk) = await_promise(reader.read()).await else {
            return Ok(None);
        };
        if get(&chunk, "done").as_bool() == Some(true) {
            return Ok(None);
        }
        let value = get(&chunk, "value");
        if let Some(bytes) = value.dyn_ref::<js_sys::Uint8Array>() {
            buf.extend(bytes.to_vec());
        }
        for ev in take_events(&mut buf) {
            if ev.event != "state" {
                continue;
            }
            let Ok(view) = js_sys::JSON::parse(&ev.data) else {
                continue;
            };
            // The page's callback failing must not stop the following.
            let _ = on_update.call1(&JsValue::NULL, &view);
            if is_final(&view) {
                let _ = reader.cancel();
                return Ok(Some(view));
            }
        }
    }
}

/// `followStatus(relayBase, token, tid, onUpdate)`: follows
/// `GET /api/v1/submissions/{tid}/events`, calling `onUpdate(view)` for every state, until
/// the submission is `stored` or `rejected`; resolves with that final view. When the
/// stream ends early it reads the state and reconnects.
#[wasm_bindgen(js_name = followStatus)]
pub async fn follow_status(
    relay_base: String,
    token: String,
    tid: String,
    on_update: js_sys::Function,
) -> Result<JsValue> {
    let tid: TxId = tid
        .parse()
        .map_err(|_| ClientError::invalid(format!("“{tid}” is not a transaction id.")))?;
    let base = relay_base.trim_end_matches('/');
    let events = format!("{base}/api/v1/submissions/{tid}/events");
    let status = format!("/api/v1/submissions/{tid}");
    for attempt in 0..MAX_RECONNECTS {
        match stream_once(&events, &token, &on_update).await {
            Ok(Some(view)) => return Ok(view),
            Ok(None) => {}
            Err(e) if e.code() == "relay_unreachable" => {}
            Err(e) => return Err(e),
        }
        let view = call(base, Some(&token), "GET", &status, &JsValue::UNDEFINED).await?;
        if is_final(&view) {
            let _ = on_update.call1(&JsValue::NULL, &view);
            return Ok(view);
        }
        js::delay(i32::try_from(500 * (attempt + 1).min(10)).unwrap_or(5000)).await;
    }
    Err(ClientError::new(
        "status_unknown",
        "The record's final state is not known yet; look at it again later.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_on_blank_lines_and_comments_skipped() {
        let mut buf = b"event: state\ndata: {\"state\":\"queued\"}\n\n:\n\nevent: state\ndata: {\"a\":\ndata: 1}\n\nevent: st".to_vec();
        let events = take_events(&mut buf);
        assert_eq!(
            events,
            [
                SseEvent {
                    event: "state".into(),
                    data: "{\"state\":\"queued\"}".into()
                },
                SseEvent {
                    event: "state".into(),
                    data: "{\"a\":\n1}".into()
                },
            ]
        );
        assert_eq!(buf, b"event: st");
        buf.extend_from_slice(b"ate\r\ndata: x\r\n\r\n");
        let events = take_events(&mut buf);
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].event.as_str(), events[0].data.as_str()),
            ("state", "x")
        );
        assert!(buf.is_empty());
    }
}
