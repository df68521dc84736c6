//! A TCP listener whose connections can be reset before a response is sent.
//!
//! Why: a handler cannot reach its socket, and an axum response always sends
//! a status line. So [`Behaviour::Reset`](crate::Behaviour::Reset) answers
//! with a marker header, and the connection's writer, seeing the marker in
//! the bytes about to go out, resets the socket (zero linger: an RST, as a
//! crashed upstream or a proxy dropping the call sends) and writes nothing.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The header a response carries to have its connection reset instead.
pub(crate) const RESET_MARKER: &str = "x-fake-upstream-reset-connection";

/// Accepts like a `TcpListener`; its connections honour [`RESET_MARKER`].
pub(crate) struct ResettingListener(pub(crate) TcpListener);

impl axum::serve::Listener for ResettingListener {
    type Io = ResettingStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (ResettingStream(stream), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection that resets itself instead of writing a marked response.
pub(crate) struct ResettingStream(TcpStream);

impl ResettingStream {
    /// Resets the connection if `first`, the first buffer of a write, holds
    /// a response head with the marker. Only heads are scanned (a write that
    /// starts a response starts with its status line), so a 50 MB body costs
    /// nothing.
    fn reset_if_marked(&self, first: &[u8]) -> Option<io::Error> {
        if !first.starts_with(b"HTTP/") {
            return None;
        }
        let head_end = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(first.len());
        let marker = RESET_MARKER.as_bytes();
        if !first[..head_end].windows(marker.len()).any(|w| w == marker) {
            return None;
        }
        // Zero linger makes the close an RST; if it cannot be set, the close
        // is a FIN, which still ends the call before any header.
        let _ = self.0.set_zero_linger();
        Some(io::Error::new(io::ErrorKind::ConnectionReset, "fake-upstream reset"))
    }
}

impl AsyncRead for ResettingStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettingStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(e) = self.reset_if_marked(buf) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = bufs.first().and_then(|b| self.reset_if_marked(b)) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
