//! The HTTP functions run their group of `pj_http`'s routes, the same handlers as `pj serve`,
//! through `lambda_http`, with two layers of their own: `api` takes the user from API Gateway's
//! JWT authorizer, and `log-stream` ends its response before Lambda's time limit.

use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use http::header;
use lambda_http::request::RequestContext;
use pj_http::GatewayClaims;

/// The claims API Gateway's JWT authorizer verified, from the request context `lambda_http`
/// puts in the request's extensions (`requestContext.authorizer.jwt.claims`).
pub fn gateway_claims(extensions: &http::Extensions) -> Option<GatewayClaims> {
    let Some(RequestContext::ApiGatewayV2(context)) = extensions.get::<RequestContext>() else {
        return None;
    };
    let claims = &context.authorizer.as_ref()?.jwt.as_ref()?.claims;
    let sub = claims.get("sub").filter(|s| !s.is_empty())?;
    Some(GatewayClaims {
        sub: sub.clone(),
        email: claims.get("email").filter(|e| !e.is_empty()).cloned(),
    })
}

/// Puts the authorizer's claims into the request as [`GatewayClaims`], where a router built
/// with `Authenticator::trusting_gateway` finds them.
pub fn with_gateway_claims(router: Router) -> Router {
    router.layer(middleware::from_fn(
        |mut request: Request, next: Next| async move {
            if let Some(claims) = gateway_claims(request.extensions()) {
                request.extensions_mut().insert(claims);
            }
            next.run(request).await
        },
    ))
}

/// What a cut stream says last: an SSE comment, which clients ignore, before they reconnect
/// with `Last-Event-ID` as they do after any end of the stream.
const CUT_NOTE: &[u8] =
    b": the stream ends before the function's time limit; reconnect with Last-Event-ID\n\n";

/// Ends server-sent event responses `margin` (at most a tenth of the time left) before the
/// invocation's deadline (Lambda's `Lambda-Runtime-Deadline-Ms`), so the stream closes cleanly instead of being killed with
/// the function, and the client resumes after the last event it saw.
pub fn end_streams_before_deadline(router: Router, margin: Duration) -> Router {
    router.layer(middleware::from_fn(
        move |request: Request, next: Next| async move {
            let deadline = request
                .extensions()
                .get::<lambda_http::Context>()
                .filter(|c| c.deadline > 0)
                .map(|c| c.deadline());
            let response = next.run(request).await;
            match deadline {
                Some(deadline) if is_event_stream(&response) => {
                    let remaining = deadline
                        .duration_since(SystemTime::now())
                        .unwrap_or_default();
                    if remaining.is_zero() {
                        // Lambda stops a function at its deadline, so one already past comes
                        // from an emulator (`cargo lambda watch` sends the invocation's start).
                        tracing::warn!(
                            "the invocation's deadline has passed already; the stream is not cut"
                        );
                        return response;
                    }
                    // A short invocation keeps most of its time too.
                    let left = remaining.saturating_sub(margin.min(remaining / 10));
                    tracing::info!(
                        ends_in_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
                        deadline_in_ms = u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX),
                        "streaming"
                    );
                    cut_after(response, left)
                }
                _ => response,
            }
        },
    ))
}

fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// The response with its body ended after `after`.
pub fn cut_after(response: Response, after: Duration) -> Response {
    struct Cut {
        inner: axum::body::BodyDataStream,
        timer: std::pin::Pin<Box<tokio::time::Sleep>>,
        done: bool,
    }
    response.map(|body| {
        let state = Cut {
            inner: body.into_data_stream(),
            timer: Box::pin(tokio::time::sleep(after)),
            done: false,
        };
        let stream = futures::stream::unfold(state, |mut s| async move {
            if s.done {
                return None;
            }
            tokio::select! {
                biased;
                item = s.inner.next() => item.map(|item| (item, s)),
                () = &mut s.timer => {
                    s.done = true;
                    tracing::info!("the stream reached the function's time limit; the client will reconnect");
                    Some((Ok(Bytes::from_static(CUT_NOTE)), s))
                }
            }
        });
        Body::from_stream(stream)
    })
}
