//! Responses with the security headers every answer carries, and request bodies read
//! within a size and a time limit.

use std::error::Error as StdError;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as HttpBody, Bytes};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

/// What any request body must be for the routes.
pub(crate) trait RequestBody: HttpBody<Error = Self::E> + Send + 'static {
    type E: Into<Box<dyn StdError + Send + Sync>>;
}

impl<B> RequestBody for B
where
    B: HttpBody + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type E = B::Error;
}

pub(crate) type Body = http_body_util::Either<Full<Bytes>, crate::preview::live::EventStream>;

/// The daemon's own pages and answers load their style sheet and nothing else: no script
/// runs on them.
pub(crate) const CSP: &str =
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; \
font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The previewed site may also run its own scripts (the table filter) from the same origin,
/// and so may a platform's receipt page (its checker, `/verify/assets/receipt.js`).
pub(crate) const PREVIEW_CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A response with `body` and every security header.
pub(crate) fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    with_policy(status, content_type, body, CSP)
}

/// A file of the previewed site, with every security header but the preview's CSP.
pub(crate) fn preview_response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    with_policy(status, content_type, body, PREVIEW_CSP)
}

/// `text/event-stream` (the live preview's events): open until the page goes, never cached.
pub(crate) fn event_stream(events: crate::preview::live::EventStream) -> Response<Body> {
    let mut r = with_policy(
        StatusCode::OK,
        "text/event-stream",
        Bytes::new(),
        PREVIEW_CSP,
    );
    *r.body_mut() = http_body_util::Either::Right(events);
    r
}

fn with_policy(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
    csp: &'static str,
) -> Response<Body> {
    let mut r = Response::new(http_body_util::Either::Left(Full::new(body.into())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    // The headers below and Retry-After or Content-Disposition, in one allocation.
    h.reserve(8);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

pub(crate) fn html(status: StatusCode, page: String) -> Response<Body> {
    response(status, "text/html; charset=utf-8", page)
}

/// A page that runs its own script from the same origin (a platform's receipt page).
pub(crate) fn html_with_script(status: StatusCode, page: String) -> Response<Body> {
    preview_response(status, "text/html; charset=utf-8", page)
}

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    response(status, "application/json", bytes)
}

/// `{"error": code}` with `status`.
pub(crate) fn json_error(status: StatusCode, code: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": code }))
}

pub(crate) fn with_header(
    mut r: Response<Body>,
    name: header::HeaderName,
    value: &str,
) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
    r
}

pub(crate) fn redirect(location: &str) -> Response<Body> {
    let r = response(
        StatusCode::MOVED_PERMANENTLY,
        "text/plain; charset=utf-8",
        "",
    );
    with_header(r, header::LOCATION, location)
}

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    TooLarge,
    Timeout,
    Broken,
}

impl BodyError {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Timeout => StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken => StatusCode::BAD_REQUEST,
        }
    }

    pub(crate) fn code(self) -> &'static str {
        match self {
            BodyError::TooLarge => "too_large",
            BodyError::Timeout => "timeout",
            BodyError::Broken => "bad_request",
        }
    }
}

/// The whole body, at most `max` bytes, read within `timeout`. A declared length over
/// `max` is refused before anything is read.
pub(crate) async fn read_body<B: RequestBody>(
    req: Request<B>,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = std::pin::pin!(Limited::new(req.into_body(), max));
    // Most bodies arrive with the headers: read without a timer first (hyper hands the
    // chunk over on the next turn of the connection), and only a body still missing then
    // gets `timeout`, so a slow client is cut off all the same.
    let mut read = std::pin::pin!(read_frames(body.as_mut()));
    let mut turns = 0;
    let early = std::future::poll_fn(|cx| match std::future::Future::poll(read.as_mut(), cx) {
        std::task::Poll::Ready(done) => std::task::Poll::Ready(Some(done)),
        std::task::Poll::Pending if turns < 2 => {
            turns += 1;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await;
    let done = match early {
        Some(done) => done,
        None => tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| BodyError::Timeout)?,
    };
    done.map_err(|e| match e.is::<http_body_util::LengthLimitError>() {
        true => BodyError::TooLarge,
        false => BodyError::Broken,
    })
}

/// Every data frame of `body`, in one buffer (a body of one frame without a copy).
async fn read_frames<B: hyper::body::Body>(
    mut body: std::pin::Pin<&mut B>,
) -> Result<Bytes, B::Error> {
    use hyper::body::Buf as _;
    let mut whole: Option<Bytes> = None;
    let mut more = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(mut data) = frame?.into_data() else {
            continue;
        };
        let data = data.copy_to_bytes(data.remaining());
        match whole {
            None => whole = Some(data),
            Some(ref first) => {
                if more.is_empty() {
                    more.extend_from_slice(first);
                }
                more.extend_from_slice(&data);
            }
        }
    }
    Ok(match more.is_empty() {
        true => whole.unwrap_or_default(),
        false => Bytes::from(more),
    })
}

/// Whether the request's Content-Type is `expected` (parameters such as charset allowed).
pub(crate) fn content_type_is<B>(req: &Request<B>, expected: &str) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// A body of the given chunks, one frame each.
    struct Chunks(VecDeque<&'static [u8]>);

    impl hyper::body::Body for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            let next = self.0.pop_front().map(Bytes::from_static);
            Poll::Ready(next.map(|b| Ok(hyper::body::Frame::data(b))))
        }
    }

    fn request(chunks: &[&'static [u8]]) -> Request<Chunks> {
        Request::new(Chunks(chunks.iter().copied().collect()))
    }

    #[tokio::test]
    async fn a_body_is_read_whole_in_one_frame_or_many_and_capped() {
        let second = Duration::from_secs(1);
        let one = read_body(request(&[b"number=1"]), 64, second).await;
        assert_eq!(one.ok().as_deref(), Some(&b"number=1"[..]));
        let many = read_body(request(&[b"num", b"ber", b"=1"]), 64, second).await;
        assert_eq!(many.ok().as_deref(), Some(&b"number=1"[..]));
        let empty = read_body(request(&[]), 64, second).await;
        assert_eq!(empty.ok().as_deref(), Some(&b""[..]));
        let large = read_body(request(&[b"0123456789", b"0123456789"]), 15, second).await;
        assert!(matches!(large, Err(BodyError::TooLarge)));
    }
}
