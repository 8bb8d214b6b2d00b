//! OpenID Connect discovery of the token endpoint, and the `.well-known`
//! reads it shares with tenant discovery.
//!
//! NICE advises reading `token_endpoint` from
//! `<issuer>/.well-known/openid-configuration` rather than hard-coding it. A
//! source built with [`TokenEndpoint::discover`](crate::token::TokenEndpoint::discover)
//! (or `.issuer(..)`) does so on its first fetch and remembers the answer; a
//! failed discovery is not remembered, so the next fetch tries again.
//!
//! ```
//! use cxone_auth::token::AccessKeyGrant;
//!
//! let source = AccessKeyGrant::new("id", "secret", "KEYID", "KEYSECRET")?
//!     .issuer("https://cxone.niceincontact.com")?;
//! # Ok::<(), cxone_auth::Error>(())
//! ```
//!
//! The discovered `token_endpoint` must follow the same URL rule as a
//! configured one (`https` except on loopback hosts): a discovery document
//! cannot downgrade where the client secret is sent.

use bytes::Bytes;
use http::header::ACCEPT;
use http::{HeaderValue, Request, StatusCode, Uri};
use serde_json::{Map, Value};
use url::Url;

use crate::Error;
use crate::backoff::retry_after;
use crate::token::HttpTransport;
use crate::token::endpoint::{check_url_rule, join_path};
use crate::token::response::json_object;

/// Where OpenID Connect Discovery §4 puts the configuration, under the issuer.
const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";

/// Reads the issuer's OpenID configuration and returns its `token_endpoint`.
pub(crate) async fn discover_token_endpoint(
    transport: &dyn HttpTransport,
    issuer: &Url,
) -> Result<Url, Error> {
    let url = join_path(issuer, OPENID_CONFIGURATION_PATH);
    let document = get_json(
        transport,
        &url,
        "the OpenID configuration",
        "the issuer has no OpenID configuration (HTTP 404): check the issuer URL",
    )
    .await?;
    let Some(token_endpoint) = document.get("token_endpoint").and_then(Value::as_str) else {
        return Err(Error::discovery(
            "the OpenID configuration names no `token_endpoint`",
        ));
    };
    let token_endpoint = Url::parse(token_endpoint).map_err(|err| {
        Error::discovery(format!(
            "the OpenID configuration's `token_endpoint` is not a URL: {err}"
        ))
    })?;
    check_url_rule("discovered token_endpoint", &token_endpoint).map_err(Error::discovery)?;
    Ok(token_endpoint)
}

/// `GET url` for a JSON object, mapping failures to typed errors: 404 is
/// [`Discovery`](crate::ErrorKind::Discovery) with `not_found` as its message;
/// 408, 429 and 5xx keep their transient kinds and `Retry-After`; other
/// statuses and redirects are `Discovery`; a body that is not a JSON object is
/// [`InvalidResponse`](crate::ErrorKind::InvalidResponse). `what` names the
/// document in messages.
pub(crate) async fn get_json(
    transport: &dyn HttpTransport,
    url: &Url,
    what: &str,
    not_found: &str,
) -> Result<Map<String, Value>, Error> {
    let request = get_request(url)?;
    let response = transport.send(request).await?;
    let status = response.status();
    if status.is_success() {
        return json_object(response.body()).ok_or_else(|| {
            Error::invalid_response(format!("{what} is not a JSON object")).with_status(status)
        });
    }
    let err = match status {
        StatusCode::NOT_FOUND => Error::discovery(not_found),
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
            Error::from_token_response(status, None, retry_after(response.headers()))
                .with_message(format!("reading {what} failed"))
        }
        s if s.is_server_error() => {
            Error::from_token_response(status, None, retry_after(response.headers()))
                .with_message(format!("reading {what} failed"))
        }
        s if s.is_redirection() => Error::discovery(format!(
            "reading {what} answered with a redirect, and redirects are not followed"
        )),
        _ => Error::discovery(format!("reading {what} failed")),
    };
    Err(err.with_status(status))
}

fn get_request(url: &Url) -> Result<Request<Bytes>, Error> {
    let uri = Uri::try_from(url.as_str())
        .map_err(|err| Error::config("the URL is not a valid request URI").with_source(err))?;
    let mut request = Request::new(Bytes::new());
    *request.uri_mut() = uri;
    request
        .headers_mut()
        .insert(ACCEPT, HeaderValue::from_static("application/json"));
    Ok(request)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use http::Response;
    use http_body_util::Full;

    use super::*;
    use crate::ErrorKind;
    use crate::token::ServiceTransport;

    fn server(status: u16, body: &'static str) -> (impl HttpTransport, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let service = tower::service_fn(move |req: Request<Full<Bytes>>| {
            log.lock().unwrap().push(req.uri().to_string());
            async move {
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(status)
                        .header("retry-after", "3")
                        .body(Full::new(Bytes::from_static(body.as_bytes())))
                        .unwrap(),
                )
            }
        });
        (ServiceTransport::new(service), seen)
    }

    fn issuer() -> Url {
        Url::parse("https://issuer.example.com/realm").unwrap()
    }

    #[tokio::test]
    async fn reads_token_endpoint() {
        let (transport, seen) = server(
            200,
            r#"{"issuer":"https://issuer.example.com","token_endpoint":"https://issuer.example.com/auth/token"}"#,
        );
        let url = discover_token_endpoint(&transport, &issuer())
            .await
            .unwrap();
        assert_eq!(url.as_str(), "https://issuer.example.com/auth/token");
        assert_eq!(
            *seen.lock().unwrap(),
            ["https://issuer.example.com/realm/.well-known/openid-configuration"]
        );
    }

    #[tokio::test]
    async fn bad_documents_are_discovery_errors() {
        for (body, says) in [
            (r#"{"issuer":"x"}"#, "names no `token_endpoint`"),
            (r#"{"token_endpoint":"/auth/token"}"#, "is not a URL"),
            (
                r#"{"token_endpoint":"http://issuer.example.com/auth/token"}"#,
                "discovered token_endpoint must use https",
            ),
        ] {
            let (transport, _) = server(200, body);
            let err = discover_token_endpoint(&transport, &issuer())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Discovery, "{body}");
            assert!(err.to_string().contains(says), "{err}");
        }
        let (transport, _) = server(200, "<html>");
        let err = discover_token_endpoint(&transport, &issuer())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    }

    #[tokio::test]
    async fn statuses_are_typed() {
        for (status, kind, transient) in [
            (404, ErrorKind::Discovery, false),
            (403, ErrorKind::Discovery, false),
            (301, ErrorKind::Discovery, false),
            (503, ErrorKind::Unavailable, true),
            (429, ErrorKind::RateLimited, true),
        ] {
            let (transport, _) = server(status, "");
            let err = discover_token_endpoint(&transport, &issuer())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), kind, "{status}");
            assert_eq!(err.is_transient(), transient, "{status}");
            assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
            assert!(
                err.to_string().contains("OpenID configuration"),
                "{status}: {err}"
            );
        }
    }
}
