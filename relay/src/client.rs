//! The `mediblock` command line's client side: make keys, enrol a user (as an
//! administrator) and submit a record (as a clinician) against a running relay — what a
//! newcomer uses before the browser app, and what scripts use.

use std::collections::BTreeMap;
use std::path::Path;

use alloy::transports::http::reqwest;
use mediblock_protocol::auth::sign_in_message;
use mediblock_protocol::ids::{PatientId, Salt, TemplateRef, TxId, UnixMillis, UserId};
use mediblock_protocol::keys::{Keypair, PublicKeys};
use mediblock_protocol::record::InitialTransaction;
use mediblock_protocol::template::Template;
use rand_core::UnwrapErr;
use serde_json::{Value, json};

use crate::keys::load_or_create;
use crate::now;

type Result<T, E = String> = std::result::Result<T, E>;

/// A signed-in connection to a relay.
#[derive(Debug)]
pub struct Session {
    http: reqwest::Client,
    base: String,
    token: String,
}

async fn send(req: reqwest::RequestBuilder) -> Result<Value> {
    let res = req
        .send()
        .await
        .map_err(|e| format!("cannot reach the relay: {e}"))?;
    let status = res.status();
    let text = res.text().await.map_err(|e| e.to_string())?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
}

impl Session {
    /// Signs in to the relay at `base` as `uid` with the keys in `key_file`.
    pub async fn sign_in(base: &str, uid: &UserId, keys: &Keypair) -> Result<Self> {
        let http = reqwest::Client::new();
        let base = base.trim_end_matches('/').to_owned();
        let ch = send(
            http.post(format!("{base}/api/v1/auth/challenge"))
                .json(&json!({"uid": uid})),
        )
        .await?;
        let challenge = ch["challenge"]
            .as_str()
            .ok_or("no challenge in the answer")?;
        let mut nonce = [0u8; 32];
        hex::decode_to_slice(challenge, &mut nonce).map_err(|_| "bad challenge")?;
        let signature = keys.sign(&sign_in_message(&nonce, uid));
        let session = send(
            http.post(format!("{base}/api/v1/auth/session"))
                .json(&json!({
                    "uid": uid, "challenge": challenge, "signature": hex::encode(signature)
                })),
        )
        .await?;
        let token = session["token"]
            .as_str()
            .ok_or("no token in the answer")?
            .to_owned();
        Ok(Self { http, base, token })
    }

    /// `GET {base}{path}` with the session's token; the answer's JSON, or the error status
    /// and body.
    pub async fn get(&self, path: &str) -> Result<Value> {
        send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.token),
        )
        .await
    }

    /// `POST {base}{path}` with the session's token and a JSON body; the answer's JSON, or the
    /// error status and body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .json(body),
        )
        .await
    }
}

/// Reads a key file (64 secret bytes as hex) without creating one.
pub fn read_keys(path: &Path) -> Result<Keypair> {
    if !path.exists() {
        return Err(format!("{}: no such key file", path.display()));
    }
    load_or_create(path, &mut UnwrapErr(getrandom::SysRng))
}

/// `mediblock keys new FILE`: creates a key file and prints its public keys (to give to the
/// administrator for enrolment).
pub fn keys_new(path: &Path) -> Result<PublicKeys> {
    if path.exists() {
        return Err(format!("{} exists; not overwriting keys", path.display()));
    }
    Ok(load_or_create(path, &mut UnwrapErr(getrandom::SysRng))?.public())
}

/// `mediblock enrol`: an administrator enrols a user with their public keys.
pub async fn enrol(
    base: &str,
    admin_key: &Path,
    uid: &UserId,
    role: &str,
    public: &PublicKeys,
) -> Result<Value> {
    let admin = read_keys(admin_key)?;
    let session = Session::sign_in(
        base,
        &UserId::new("admin").map_err(|e| e.to_string())?,
        &admin,
    )
    .await?;
    session
        .post(
            "/api/v1/users",
            &json!({"uid": uid, "role": role, "keys": public}),
        )
        .await
}

/// `mediblock submit`: signs, seals and submits a record from `name=value` fields, then
/// follows its state until it is stored or rejected.
pub async fn submit(
    base: &str,
    key_file: &Path,
    uid: &UserId,
    template: &TemplateRef,
    patient: Option<PatientId>,
    fields: &[String],
) -> Result<Value> {
    let keys = read_keys(key_file)?;
    let session = Session::sign_in(base, uid, &keys).await?;
    let spec = session
        .get(&format!(
            "/api/v1/templates/{}/{}",
            template.id, template.version
        ))
        .await?;
    let template: Template = serde_json::from_value(spec).map_err(|e| e.to_string())?;
    let info = session.get("/api/v1/info").await?;
    let relay: PublicKeys =
        serde_json::from_value(info["relay_keys"].clone()).map_err(|e| e.to_string())?;
    let mut form = BTreeMap::new();
    for f in fields {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| format!("{f:?}: expected name=value"))?;
        form.insert(k.to_owned(), v.to_owned());
    }
    let attributes = template
        .map_form(&form)
        .map_err(|v| format!("the record breaks its template's rules: {}", json!(v)))?;
    let issued = session.post("/api/v1/tickets", &json!({})).await?;
    let ticket: u64 = issued["ticket"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .ok_or("the relay answered no ticket")?;
    let mut rng = UnwrapErr(getrandom::SysRng);
    let ti = InitialTransaction {
        tid: TxId::for_ticket(ticket, &mut rng),
        uid: uid.clone(),
        pid: patient.unwrap_or_else(|| PatientId::random(&mut rng)),
        template: template.reference(),
        attributes,
        created_at: UnixMillis(now().0),
        salt: Salt::random(&mut rng),
        prev: None,
    };
    let pid = ti.pid;
    let sealed = ti
        .sign(&keys)
        .seal(&keys, &relay, &mut rng)
        .map_err(|e| e.to_string())?;
    let accepted = session
        .post(
            "/api/v1/submissions",
            &serde_json::to_value(&sealed).map_err(|e| e.to_string())?,
        )
        .await?;
    let url = accepted["status_url"]
        .as_str()
        .ok_or("no status URL")?
        .to_owned();
    // Follow the state for up to a minute (a person waits; a script can poll the URL).
    for _ in 0..240 {
        let st = session.get(&url).await?;
        if matches!(st["state"].as_str(), Some("stored" | "rejected")) {
            return Ok(json!({"patient": pid, "submission": st}));
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Ok(json!({"patient": pid, "submission": accepted}))
}

/// `mediblock publish`: an administrator publishes a template (JSON file); the relay
/// registers it on chain and stores it.
pub async fn publish(base: &str, admin_key: &Path, template_file: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(template_file)
        .map_err(|e| format!("{}: {e}", template_file.display()))?;
    let template: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", template_file.display()))?;
    let admin = read_keys(admin_key)?;
    let session = Session::sign_in(
        base,
        &UserId::new("admin").map_err(|e| e.to_string())?,
        &admin,
    )
    .await?;
    session.post("/api/v1/templates", &template).await
}
