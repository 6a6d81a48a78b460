//! A clinician's identity in the browser: their keys, the keystore that keeps them, the
//! enrolment request, sign-in, and sealing initial transactions for the relay — what
//! `mediblock keys-new`, `enrol` and `submit` do natively (`relay/src/client.rs`).

use std::collections::BTreeMap;

use mediblock_protocol::auth::sign_in_message;
use mediblock_protocol::ids::{
    Commitment, EthAddress, PatientId, Role, Salt, TxId, UnixMillis, UserId,
};
use mediblock_protocol::keys::{Keypair, PublicKeys};
use mediblock_protocol::record::{InitialTransaction, SealedTransaction};
use mediblock_protocol::template::Template;
use rand_core::{CryptoRng, UnwrapErr};
use serde_json::json;
use wasm_bindgen::prelude::*;

use crate::error::{ClientError, Result};
use crate::form::{FormValue, map_values, template_from_js, values_from_js};
use crate::js::{self, from_js, get, get_str, to_js};
use crate::keystore;

/// The browser's CSPRNG (`crypto.getRandomValues`; the OS generator natively).
pub(crate) fn os_rng() -> UnwrapErr<getrandom::SysRng> {
    UnwrapErr(getrandom::SysRng)
}

/// The window's `localStorage` key of the keystore.
pub const STORAGE_KEY: &str = "mediblock.keystore";

/// What sealing produced: the sealed TI to send and the ids the page keeps.
#[derive(Debug)]
pub struct Sealed {
    /// The body of `POST /api/v1/submissions`.
    pub sealed: SealedTransaction,
    /// The patient (fresh for a new patient).
    pub pid: PatientId,
    /// The signed TI's commitment: what the chain will anchor.
    pub commitment: Commitment,
}

/// A user's id and keys, held in the page's memory.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Identity {
    uid: UserId,
    keys: Keypair,
}

impl Identity {
    /// An identity from its parts (tests, and the keystore).
    pub fn from_parts(uid: UserId, keys: Keypair) -> Self {
        Self { uid, keys }
    }

    /// The user id.
    pub fn user_id(&self) -> &UserId {
        &self.uid
    }

    /// The keys.
    pub fn keys(&self) -> &Keypair {
        &self.keys
    }

    /// Builds, checks (every rule first), signs and seals an initial transaction whose tid
    /// carries `ticket` (issued by the relay, `POST /api/v1/tickets`) in its first 8 bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn seal_record(
        &self,
        template: &Template,
        relay: &PublicKeys,
        ticket: u64,
        patient: Option<PatientId>,
        previous: Option<Commitment>,
        values: &BTreeMap<String, FormValue>,
        now: UnixMillis,
        rng: &mut impl CryptoRng,
    ) -> Result<Sealed> {
        let attributes = map_values(template, values).map_err(ClientError::rules)?;
        let ti = InitialTransaction {
            tid: TxId::for_ticket(ticket, rng),
            uid: self.uid.clone(),
            pid: patient.unwrap_or_else(|| PatientId::random(rng)),
            template: template.reference(),
            attributes,
            created_at: now,
            salt: Salt::random(rng),
            prev: previous,
        };
        let pid = ti.pid;
        let signed = ti.sign(&self.keys);
        let commitment = signed.commitment();
        let sealed = signed.seal(&self.keys, relay, rng)?;
        Ok(Sealed {
            sealed,
            pid,
            commitment,
        })
    }
}

fn relay_keys(relay: &JsValue) -> Result<PublicKeys> {
    let keys = match get(relay, "relay_keys") {
        v if v.is_object() => v,
        _ => relay.clone(),
    };
    from_js(keys, "The relay's public keys (relay_keys of /api/v1/info)")
}

/// The relay-issued ticket of a sealing request: `req.ticket`, the decimal string the relay
/// answered (`POST /api/v1/tickets`), or a JavaScript number when it is a safe integer.
fn ticket_from_js(req: &JsValue) -> Result<u64> {
    let value = get(req, "ticket");
    if value.is_undefined() || value.is_null() {
        return Err(ClientError::invalid(
            "A ticket from the relay is required to seal a record (POST /api/v1/tickets); \
             none was given.",
        ));
    }
    if let Some(n) = value.as_f64() {
        return js::as_u64(n).ok_or_else(|| {
            ClientError::invalid(format!(
                "The ticket {n} is not valid: it must be a whole number from 0 to \
                 9007199254740991, or the relay's decimal string."
            ))
        });
    }
    match value.as_string() {
        Some(s) => parse_ticket(&s),
        None => Err(ClientError::invalid(
            "The ticket is not valid: it must be the decimal string the relay issued.",
        )),
    }
}

/// A ticket as the relay writes it: the decimal digits of a u64 (no sign, no spaces).
pub fn parse_ticket(s: &str) -> Result<u64> {
    let invalid = || {
        ClientError::invalid(format!(
            "The ticket “{s}” is not valid: it must be the decimal number the relay issued \
             (0 to 18446744073709551615)."
        ))
    };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    s.parse().map_err(|_| invalid())
}

fn optional_id<T: core::str::FromStr>(req: &JsValue, key: &str, what: &str) -> Result<Option<T>> {
    match get_str(req, key) {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ClientError::invalid(format!("{what} “{s}” is not valid."))),
    }
}

#[wasm_bindgen]
impl Identity {
    /// `Identity.generate(uid)`: fresh ed25519 and X25519 keys for `uid`.
    pub fn generate(uid: &str) -> Result<Identity> {
        let uid = UserId::new(uid)?;
        Ok(Self {
            uid,
            keys: Keypair::generate(&mut os_rng()),
        })
    }

    /// `Identity.fromKeystore(fileText, passphrase)`: opens a keystore
    /// (`wrong_passphrase`, `bad_keystore`).
    #[wasm_bindgen(js_name = fromKeystore)]
    pub fn from_keystore(file_text: &str, passphrase: &str) -> Result<Identity> {
        let (uid, keys) = keystore::open(file_text, passphrase)?;
        Ok(Self { uid, keys })
    }

    /// `Identity.fromKeyFile(uid, fileText)`: takes over a key file written by the relay's
    /// command line (`mediblock keys-new`, or the first-run `data/admin.key`): the 64 secret
    /// bytes as hex. The page then locks it in a passphrase keystore (`bad_key_file`).
    #[wasm_bindgen(js_name = fromKeyFile)]
    pub fn from_key_file(uid: &str, file_text: &str) -> Result<Identity> {
        let uid = UserId::new(uid)?;
        let mut seeds = zeroize::Zeroizing::new([0u8; 64]);
        hex::decode_to_slice(file_text.trim(), seeds.as_mut()).map_err(|_| {
            ClientError::new(
                "bad_key_file",
                "This is not a MediBlock key file (it should hold 128 hexadecimal characters).",
            )
        })?;
        Ok(Self {
            uid,
            keys: Keypair::from_seeds(&seeds),
        })
    }

    /// `identity.toKeystore(passphrase)`: the keystore's JSON text (Argon2id + AES-256-GCM).
    #[wasm_bindgen(js_name = toKeystore)]
    pub fn to_keystore(&self, passphrase: &str) -> Result<String> {
        keystore::seal(&self.uid, &self.keys, passphrase, &mut os_rng())
    }

    /// `identity.uid`.
    #[wasm_bindgen(getter)]
    pub fn uid(&self) -> String {
        self.uid.to_string()
    }

    /// `identity.publicKeys()`: `{ uid, ed25519, x25519 }` in hex, what `mediblock keys-new`
    /// prints.
    #[wasm_bindgen(js_name = publicKeys)]
    pub fn public_keys(&self) -> Result<JsValue> {
        let public = self.keys.public();
        to_js(&json!({
            "uid": self.uid,
            "ed25519": hex::encode(public.signing_bytes()),
            "x25519": hex::encode(public.agreement_bytes()),
        }))
    }

    /// `identity.enrolmentRequest(role, ethAddress?)`: the body of `POST /api/v1/users`
    /// that the administrator sends.
    #[wasm_bindgen(js_name = enrolmentRequest)]
    pub fn enrolment_request(&self, role: &str, eth_address: Option<String>) -> Result<JsValue> {
        let role: Role = role.parse()?;
        let mut body = json!({
            "uid": self.uid,
            "role": role,
            "keys": self.keys.public(),
        });
        if let Some(address) = eth_address.filter(|a| !a.is_empty()) {
            let address: EthAddress = address.parse().map_err(|_| {
                ClientError::invalid(format!(
                    "“{address}” is not an Ethereum address (0x and 40 hex digits)."
                ))
            })?;
            body["eth_address"] = json!(format!("0x{}", address.to_hex()));
        }
        to_js(&body)
    }

    /// `identity.signIn(challenge)`: answers `POST /api/v1/auth/challenge`'s response with
    /// the body of `POST /api/v1/auth/session`.
    #[wasm_bindgen(js_name = signIn)]
    pub fn sign_in(&self, challenge: JsValue) -> Result<JsValue> {
        let text = get_str(&challenge, "challenge")
            .or_else(|| challenge.as_string())
            .ok_or_else(|| ClientError::invalid("The sign-in challenge is missing."))?;
        let mut nonce = [0u8; 32];
        hex::decode_to_slice(&text, &mut nonce)
            .map_err(|_| ClientError::invalid("The sign-in challenge is not 32 bytes of hex."))?;
        let signature = self.keys.sign(&sign_in_message(&nonce, &self.uid));
        to_js(&json!({
            "uid": self.uid,
            "challenge": text,
            "signature": hex::encode(signature),
        }))
    }

    /// `identity.seal({ template, relay, ticket, patient, previous, values, now? })`: checks
    /// every rule (throwing `rule_violation` with all of them), then builds, signs and seals
    /// the initial transaction. `ticket` is required: the relay's answer to `POST
    /// /api/v1/tickets` (its decimal string, or a safe-integer number); the tid starts with
    /// it (a missing or malformed ticket throws `invalid_input` before anything is built).
    /// Returns `{ tid, pid, commitment, ticket, body }`, `body` being the bytes of `POST
    /// /api/v1/submissions` (or `/submissions/wallet`) and `ticket` the ticket as a decimal
    /// string.
    pub fn seal(&self, req: JsValue) -> Result<JsValue> {
        let ticket = ticket_from_js(&req)?;
        let template = template_from_js(get(&req, "template"))?;
        let relay = relay_keys(&get(&req, "relay"))?;
        let patient: Option<PatientId> = optional_id(&req, "patient", "The patient id")?;
        let previous: Option<Commitment> =
            optional_id(&req, "previous", "The previous record's commitment")?;
        let values = values_from_js(&get(&req, "values"))?;
        let now = match js::get_f64(&req, "now") {
            Some(n) => js::as_u64(n)
                .ok_or_else(|| ClientError::invalid("`now` must be Unix milliseconds."))?,
            None => js::now_ms(),
        };
        let sealed = self.seal_record(
            &template,
            &relay,
            ticket,
            patient,
            previous,
            &values,
            UnixMillis(now),
            &mut os_rng(),
        )?;
        let body = serde_json::to_vec(&sealed.sealed)
            .map_err(|_| ClientError::new("internal", "The record could not be encoded."))?;
        let out = to_js(&json!({
            "tid": sealed.sealed.tid,
            "pid": sealed.pid,
            "commitment": sealed.commitment,
            "ticket": ticket.to_string(),
        }))?;
        js_sys::Reflect::set(
            &out,
            &JsValue::from_str("body"),
            &js_sys::Uint8Array::from(body.as_slice()),
        )
        .map_err(|_| ClientError::new("internal", "The result could not be built."))?;
        Ok(out)
    }
}

/// `localStorage`, or `storage_unavailable`. Not gloo-storage: its `LocalStorage` keeps every
/// value as JSON (the keystore would become a JSON string, and keystores saved as plain text
/// by earlier versions would no longer load), and it throws a bare JS exception, instead of
/// returning an error, when storage is off.
fn storage() -> Result<web_sys::Storage> {
    js::window()?.local_storage().ok().flatten().ok_or_else(|| {
        ClientError::new(
            "storage_unavailable",
            "This browser does not allow the app to keep data (local storage is off).",
        )
    })
}

/// `saveKeystore(fileText)`: keeps the keystore in `localStorage["mediblock.keystore"]`.
/// Refuses text that is not a keystore.
#[wasm_bindgen(js_name = saveKeystore)]
pub fn save_keystore(file_text: &str) -> Result<()> {
    keystore::read(file_text)?;
    storage()?.set_item(STORAGE_KEY, file_text).map_err(|_| {
        ClientError::new(
            "storage_unavailable",
            "The keystore could not be saved in this browser (storage full or blocked).",
        )
    })
}

/// `loadKeystore()`: the saved keystore's text, or `null`.
#[wasm_bindgen(js_name = loadKeystore)]
pub fn load_keystore() -> Result<JsValue> {
    Ok(storage()?
        .get_item(STORAGE_KEY)
        .ok()
        .flatten()
        .map_or(JsValue::NULL, JsValue::from))
}
