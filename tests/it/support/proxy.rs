//! A TCP proxy on loopback that a test can cut: every connection through it is closed, and new
//! ones are refused, until it is restored on the same port.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy to `127.0.0.1:target`.
pub struct Proxy {
    pub port: u16,
    up: Arc<AtomicBool>,
    /// Bumped on every cut: forwarding tasks of older generations end.
    generation: watch::Sender<u64>,
}

impl Proxy {
    /// Starts forwarding a free port to `target`.
    pub async fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let accepting = up.clone();
        let generations = generation.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if !accepting.load(Ordering::SeqCst) {
                    drop(client); // refused while cut
                    continue;
                }
                let mut cut = generations.subscribe();
                tokio::spawn(async move {
                    let target = SocketAddr::from(([127, 0, 0, 1], target));
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            up,
            generation,
        }
    }

    /// Closes every connection through the proxy and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
