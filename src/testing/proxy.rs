//! A fault-injecting TCP proxy between warmcache and a `redis-server`.
//!
//! [`FaultProxy`] listens on a free loopback port and relays every
//! connection to the upstream port. At run time a test can switch it to a
//! silent **blackhole** (nothing forwarded in either direction, sockets kept
//! open: no FIN, no RST, as when a network path dies), add **latency** to
//! every chunk, **reset** every connection (SO_LINGER 0: RST), **close**
//! them cleanly (FIN), **re-point** new connections to another upstream (a
//! failover behind a stable address), or **refuse `HELLO`** as a RESP2-only
//! server or proxy does.
//!
//! Its relays run as tasks on the runtime it was started on, so a proxy
//! belongs to one `#[tokio::test]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;

use crate::RedisConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How traffic is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward as is.
    Pass,
    /// Forward nothing, keep every socket open.
    Blackhole,
    /// Forward each chunk after this delay.
    Latency(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    Reset,
    Close,
}

struct Control {
    fault: watch::Sender<Fault>,
    /// Bumped by every kill; the kind of the last one.
    kill: watch::Sender<(u64, Kill)>,
    upstream: AtomicU16,
    refuse_hello: AtomicBool,
}

/// The proxy; dropping it stops accepting and closes every open relay (FIN).
pub struct FaultProxy {
    port: u16,
    control: Arc<Control>,
    accept: tokio::task::JoinHandle<()>,
}

/// What a RESP2-only server answers to `HELLO`.
const HELLO_REFUSED: &[u8] = b"-ERR unknown command `HELLO`, with args beginning with: `3`, \r\n";

impl FaultProxy {
    /// A proxy to `127.0.0.1:upstream`, forwarding as is.
    ///
    /// # Panics
    /// If no loopback port can be bound, or when called outside a tokio runtime.
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy to a free loopback port");
        let port = listener
            .local_addr()
            .expect("read the fault proxy's local address")
            .port();
        let control = Arc::new(Control {
            fault: watch::Sender::new(Fault::Pass),
            kill: watch::Sender::new((0, Kill::Close)),
            upstream: AtomicU16::new(upstream),
            refuse_hello: AtomicBool::new(false),
        });
        let accept = tokio::spawn({
            let control = Arc::clone(&control);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    tokio::spawn(relay(client, Arc::clone(&control)));
                }
            }
        });
        Self {
            port,
            control,
            accept,
        }
    }

    /// The port warmcache should connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Settings for warmcache to reach Redis through the proxy (see
    /// [`loopback_config`](super::loopback_config)).
    pub fn config(&self) -> RedisConfig {
        super::loopback_config(self.port)
    }

    /// Switches how traffic is forwarded, on every connection at once.
    pub fn set(&self, fault: Fault) {
        self.control.fault.send_replace(fault);
    }

    /// Resets every open connection (RST to both peers).
    pub fn reset_all(&self) {
        self.kill(Kill::Reset);
    }

    /// Closes every open connection cleanly (FIN to both peers).
    pub fn close_all(&self) {
        self.kill(Kill::Close);
    }

    /// New connections go to `127.0.0.1:upstream`; open ones stay where they are.
    pub fn set_upstream(&self, upstream: u16) {
        self.control.upstream.store(upstream, Ordering::Release);
    }

    /// Answer `HELLO` (the first command of a RESP3 connection) with the
    /// error of a server that does not know it.
    pub fn refuse_hello(&self, refuse: bool) {
        self.control.refuse_hello.store(refuse, Ordering::Release);
    }

    fn kill(&self, kind: Kill) {
        self.control.kill.send_modify(|(n, k)| {
            *n += 1;
            *k = kind;
        });
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.kill(Kill::Close);
    }
}

/// The byte length of the first RESP command in `buf` and whether it is HELLO.
fn first_command(buf: &[u8]) -> Option<(usize, bool)> {
    let line = |from: usize| -> Option<(&[u8], usize)> {
        let end = buf[from..].windows(2).position(|w| w == b"\r\n")? + from;
        Some((&buf[from..end], end + 2))
    };
    let (head, mut at) = line(0)?;
    let count: usize = std::str::from_utf8(head.strip_prefix(b"*")?)
        .ok()?
        .parse()
        .ok()?;
    let mut name = Vec::new();
    for i in 0..count {
        let (len, next) = line(at)?;
        let len: usize = std::str::from_utf8(len.strip_prefix(b"$")?)
            .ok()?
            .parse()
            .ok()?;
        let end = next + len + 2;
        if end > buf.len() {
            return None;
        }
        if i == 0 {
            name = buf[next..next + len].to_ascii_uppercase();
        }
        at = end;
    }
    Some((at, name == b"HELLO"))
}

async fn relay(mut client: TcpStream, control: Arc<Control>) {
    let upstream = control.upstream.load(Ordering::Acquire);
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    let mut fault = control.fault.subscribe();
    let mut kill = control.kill.subscribe();
    kill.mark_unchanged();
    let mut inspect_first = control.refuse_hello.load(Ordering::Acquire);
    let ended = {
        let (mut client_rx, mut client_tx) = client.split();
        let (mut server_rx, mut server_tx) = server.split();
        let (mut up, mut down) = (vec![0_u8; 64 * 1024], vec![0_u8; 64 * 1024]);
        loop {
            let now = *fault.borrow_and_update();
            let open = now != Fault::Blackhole;
            let delay = match now {
                Fault::Latency(d) => d,
                _ => Duration::ZERO,
            };
            tokio::select! {
                _ = kill.changed() => break Some(kill.borrow().1),
                _ = fault.changed() => {}
                read = client_rx.read(&mut up), if open => {
                    let Ok(n @ 1..) = read else { break None };
                    let mut chunk = &up[..n];
                    if std::mem::take(&mut inspect_first)
                        && let Some((len, true)) = first_command(chunk)
                    {
                        if client_tx.write_all(HELLO_REFUSED).await.is_err() {
                            break None;
                        }
                        chunk = &chunk[len..];
                    }
                    tokio::time::sleep(delay).await;
                    if server_tx.write_all(chunk).await.is_err() {
                        break None;
                    }
                }
                read = server_rx.read(&mut down), if open => {
                    let Ok(n @ 1..) = read else { break None };
                    tokio::time::sleep(delay).await;
                    if client_tx.write_all(&down[..n]).await.is_err() {
                        break None;
                    }
                }
            }
        }
    };
    if ended == Some(Kill::Reset) {
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
}
