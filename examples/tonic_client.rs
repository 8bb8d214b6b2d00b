//! A tonic `Channel` wrapped by the auth layer, against a tonic server in the
//! same program that checks the Bearer metadata of every call.
//!
//! The server answers `UNAUTHENTICATED` to a revoked token. The layer sees
//! that status (`grpc-status: 16`) and invalidates the token the call
//! carried, so the caller's next call carries a fresh one. (A gRPC request
//! body is a stream that cannot be replayed, so the retry is the caller's:
//! one more call.)
//!
//! No protoc: the messages are plain structs carried by a small hand-written
//! JSON codec. Tokens come from a mock CXone in memory; the gRPC server runs
//! on 127.0.0.1.
//!
//! ```text
//! cargo run --example tonic_client --features mock
//! ```

use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use bytes::{Buf as _, BufMut as _};
use cxone_auth::mock::{self, MockCxone};
use cxone_auth::token::{AccessKeyGrant, JwtClaims, ServiceTransport};
use cxone_auth::{CxoneAuth, CxoneAuthLayer, TokenCache};
use futures::future::BoxFuture;
use http::uri::PathAndQuery;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};
use tower::{BoxError, Service, ServiceBuilder};

/// The one method of the example's service.
const WHO_AM_I: &str = "/cxone.example.Directory/WhoAmI";

#[derive(Debug, Serialize, Deserialize)]
struct WhoAmIRequest {}

#[derive(Debug, Serialize, Deserialize)]
#[allow(dead_code, reason = "printed with Debug")]
struct WhoAmIReply {
    tenant_id: String,
    business_unit_id: i64,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let cxone = MockCxone::new();
    let report = run(&cxone).await?;
    println!("{report:#?}");
    Ok(())
}

/// What the run saw.
#[derive(Debug)]
#[allow(dead_code, reason = "printed with Debug")]
struct Report {
    first: WhoAmIReply,
    refused: Code,
    after_refresh: WhoAmIReply,
    token_requests: u64,
}

async fn run(cxone: &MockCxone) -> Result<Report, BoxError> {
    let (addr, stop) = serve(cxone.clone()).await?;

    let source = AccessKeyGrant::new(
        mock::CLIENT_ID,
        mock::CLIENT_SECRET,
        mock::ACCESS_KEY_ID,
        mock::ACCESS_KEY_SECRET,
    )?
    .token_url(cxone.token_url())?
    .transport(ServiceTransport::new(cxone.router()));
    let origin = format!("http://{addr}");
    let channel = Channel::from_shared(origin.clone())?.connect().await?;
    // A tonic client sends path-only requests; the channel adds its origin.
    // `base_url` tells the layer where they go, so it can check the host.
    let mut client = ServiceBuilder::new()
        .layer(
            CxoneAuthLayer::new(TokenCache::new(source))
                .base_url(origin.parse()?)
                .allow_loopback_http(true),
        )
        .service(channel);

    let first = who_am_i(&mut client).await?;
    cxone.revoke_all();
    let refused = who_am_i(&mut client).await.unwrap_err().code();
    let after_refresh = who_am_i(&mut client).await?;

    let _ = stop.send(());
    Ok(Report {
        first,
        refused,
        after_refresh,
        token_requests: cxone.stats().token_requests,
    })
}

/// One unary call through the authenticated channel.
async fn who_am_i(client: &mut CxoneAuth<Channel>) -> Result<WhoAmIReply, Status> {
    let mut grpc = tonic::client::Grpc::new(client.clone());
    grpc.ready()
        .await
        .map_err(|err| Status::unavailable(err.to_string()))?;
    let reply = grpc
        .unary(
            tonic::Request::new(WhoAmIRequest {}),
            PathAndQuery::from_static(WHO_AM_I),
            JsonCodec::default(),
        )
        .await?;
    Ok(reply.into_inner())
}

// ---------------------------------------------------------------------------
// The server: checks the Bearer token with the mock CXone, then answers from
// the token's claims.

async fn serve(cxone: MockCxone) -> Result<(SocketAddr, oneshot::Sender<()>), BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let checker = cxone.clone();
    let service =
        InterceptedService::new(Directory, move |request: tonic::Request<()>| {
            match bearer(&request) {
                Some(token) if checker.is_token_active(token) => Ok(request),
                Some(_) => Err(Status::unauthenticated("the token is revoked or expired")),
                None => Err(Status::unauthenticated("no Bearer token")),
            }
        });
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(Server::builder().serve_with_incoming_shutdown(
        service,
        TcpIncoming::from(listener),
        async {
            let _ = stopped.await;
        },
    ));
    Ok((addr, stop))
}

fn bearer<T>(request: &tonic::Request<T>) -> Option<&str> {
    request
        .metadata()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// The gRPC service `cxone.example.Directory`, written out as generated code
/// would be.
#[derive(Clone)]
struct Directory;

impl Service<http::Request<tonic::body::Body>> for Directory {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if request.uri().path() != WHO_AM_I {
            return Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) });
        }
        let method = tower::service_fn(|request: tonic::Request<WhoAmIRequest>| async move {
            let claims = bearer(&request)
                .and_then(JwtClaims::from_jwt)
                .ok_or_else(|| Status::unauthenticated("not a JWT"))?;
            Ok(tonic::Response::new(WhoAmIReply {
                tenant_id: claims.tenant_id().unwrap_or_default().to_owned(),
                business_unit_id: claims.business_unit_id().unwrap_or_default(),
            }))
        });
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(JsonCodec::default());
            Ok(grpc.unary(method, request).await)
        })
    }
}

// ---------------------------------------------------------------------------
// A codec carrying messages as JSON: enough for an example, no protoc needed.

struct JsonCodec<E, D>(PhantomData<(E, D)>);

impl<E, D> Default for JsonCodec<E, D> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<E, D> Codec for JsonCodec<E, D>
where
    E: Serialize + Send + 'static,
    D: DeserializeOwned + Send + 'static,
{
    type Encode = E;
    type Decode = D;
    type Encoder = JsonEncoder<E>;
    type Decoder = JsonDecoder<D>;

    fn encoder(&mut self) -> Self::Encoder {
        JsonEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        JsonDecoder(PhantomData)
    }
}

struct JsonEncoder<E>(PhantomData<E>);

impl<E: Serialize> Encoder for JsonEncoder<E> {
    type Item = E;
    type Error = Status;

    fn encode(&mut self, item: E, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        serde_json::to_writer(dst.writer(), &item).map_err(|err| Status::internal(err.to_string()))
    }
}

struct JsonDecoder<D>(PhantomData<D>);

impl<D: DeserializeOwned> Decoder for JsonDecoder<D> {
    type Item = D;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| Status::internal(err.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unauthenticated_invalidates_the_token_and_the_next_call_gets_a_fresh_one() {
        let cxone = MockCxone::new();
        let report = run(&cxone).await.unwrap();
        assert_eq!(report.first.tenant_id, mock::TENANT_ID);
        // The mock's default business unit, negative as real ones can be.
        assert_eq!(report.first.business_unit_id, -4_601_237);
        assert_eq!(report.refused, Code::Unauthenticated);
        assert_eq!(report.after_refresh.tenant_id, mock::TENANT_ID);
        assert_eq!(report.token_requests, 2, "one token, one refresh");
    }
}
