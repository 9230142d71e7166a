//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a `client_id`
//! that is an https URL names a JSON document of the client's metadata, served there. The
//! document must name itself as `client_id`, holds no secret, and is checked by the same rules
//! as a registration; such clients are public (or `private_key_jwt` with inline `jwks`) and
//! third-party, so people are asked to consent.

use serde_json::Value;

use super::client_metadata::ClientMetadataRequest;
use crate::store::clients::{Client, ClientStatus};

/// Whether `client_id` has the shape of a metadata document URL (an https URL with a path).
pub fn is_document_url(client_id: &str) -> bool {
    url::Url::parse(client_id).is_ok_and(|url| {
        matches!(url.scheme(), "https" | "http") && url.path() != "/" && url.fragment().is_none()
    })
}

/// The client a fetched document describes; `Err` says why it does not qualify.
pub fn client_from(url: &str, document: Value, now: i64) -> Result<Client, String> {
    let Value::Object(mut fields) = document else {
        return Err("the document is not a JSON object".into());
    };
    if fields.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err("the document's client_id is not its own URL".into());
    }
    if fields.contains_key("client_secret") || fields.contains_key("client_secret_expires_at") {
        return Err("a metadata document cannot carry a client secret".into());
    }
    let method = fields
        .entry("token_endpoint_auth_method")
        .or_insert_with(|| "none".into());
    if !matches!(method.as_str(), Some("none" | "private_key_jwt")) {
        return Err("token_endpoint_auth_method must be none or private_key_jwt".into());
    }
    let request: ClientMetadataRequest =
        serde_json::from_value(Value::Object(fields)).map_err(|e| e.to_string())?;
    let metadata = request
        .with_default_scope()
        .validate()
        .map_err(|e| e.to_string())?;
    Ok(Client {
        client_id: url.to_owned(),
        secret_digest: None,
        metadata,
        status: ClientStatus::Active,
        first_party: false,
        created_at: now,
        updated_at: now,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const URL: &str = "https://app.example/oauth/client.json";

    #[test]
    fn a_document_must_name_itself_and_hold_no_secret() {
        let doc = json!({
            "client_id": URL,
            "client_name": "Example",
            "redirect_uris": ["https://app.example/callback"],
        });
        let client = client_from(URL, doc.clone(), 1).unwrap();
        assert!(client.metadata.is_public() && !client.first_party);
        assert_eq!(client.client_id, URL);

        let mut other = doc.clone();
        other["client_id"] = "https://evil.example/client.json".into();
        assert!(client_from(URL, other, 1).is_err());
        let mut secret = doc.clone();
        secret["client_secret"] = "s".into();
        assert!(client_from(URL, secret, 1).is_err());
        let mut basic = doc.clone();
        basic["token_endpoint_auth_method"] = "client_secret_basic".into();
        assert!(client_from(URL, basic, 1).is_err());
        let mut bad_uri = doc;
        bad_uri["redirect_uris"] = json!(["http://app.example/callback"]);
        assert!(client_from(URL, bad_uri, 1).is_err());
        assert!(client_from(URL, json!(["x"]), 1).is_err());

        assert!(is_document_url(URL));
        assert!(!is_document_url("https://app.example/"));
        assert!(!is_document_url("my-client"));
    }
}
