//! A small blocking HTTP client for the node API (JSON in, JSON out), every call bounded by a
//! timeout.

use std::time::Duration;

use crate::Error;
use crate::limits::RESPONSE_BYTES_MAX;

/// One client; keeps connections alive between calls.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
}

impl Client {
    pub fn new(timeout: Duration) -> Self {
        Client {
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(timeout))
                .http_status_as_error(false)
                .build()
                .into(),
        }
    }

    /// GET `url`: the status and the body as JSON (a JSON string when it is not JSON).
    pub fn get(&self, url: &str) -> Result<(u16, serde_json::Value), Error> {
        let mut response = self
            .agent
            .get(url)
            .call()
            .map_err(|error| Error::Unreachable(format!("{url}: {error}")))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(RESPONSE_BYTES_MAX)
            .read_to_string()
            .map_err(|error| Error::Unreachable(format!("{url}: {error}")))?;
        Ok((status, parse(text)))
    }

    /// GET `url` and only the status (the body is read and dropped).
    pub fn get_status(&self, url: &str) -> Result<u16, Error> {
        let mut response = self
            .agent
            .get(url)
            .call()
            .map_err(|error| Error::Unreachable(format!("{url}: {error}")))?;
        let status = response.status().as_u16();
        response
            .body_mut()
            .read_to_vec()
            .map_err(|error| Error::Unreachable(format!("{url}: {error}")))?;
        Ok(status)
    }

    /// POST a JSON document: the status and the answer as JSON.
    pub fn post_json(&self, url: &str, body: &[u8]) -> Result<(u16, serde_json::Value), Error> {
        let mut response = self
            .agent
            .post(url)
            .header("content-type", "application/json")
            .send(body)
            .map_err(|error| Error::Unreachable(format!("{url}: {error}")))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|error| Error::Unreachable(format!("{url}: {error}")))?;
        Ok((status, parse(text)))
    }
}

fn parse(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

/// The committed height a node reports, if it answers.
pub fn height(client: &Client, api: &str) -> Option<u64> {
    let (status, body) = client.get(&format!("{api}/v1/node")).ok()?;
    (status == 200).then(|| body.get("height")?.as_u64())?
}

/// The nonce `authority`'s next transaction submitted to `api` should carry (ADR 0011).
pub fn next_nonce(client: &Client, api: &str, authority: &str) -> Result<u64, Error> {
    let (status, answer) = client.get(&format!("{api}/v1/authorities/{authority}/nonce"))?;
    match answer.get("next").and_then(|next| next.as_u64()) {
        Some(next) if status == 200 => Ok(next),
        _ => Err(Error::Node(format!(
            "{api} cannot say the next nonce of {authority} ({status}): {answer}"
        ))),
    }
}
