//! Attacks on the p2p ports of a running network, from the test process: idle connections
//! held open (and re-opened as the node closes them) from loopback addresses that are not the
//! nodes' own, some of them sending garbage instead of a handshake.
//!
//! The harness's nodes listen and dial from 127.0.0.1; the attack binds each socket to
//! another address of 127.0.0.0/8 before connecting (Linux routes the whole block to the
//! loopback interface), so that the nodes see many distinct strangers and their limits by
//! address act, while the nodes' own address stays a registered peer's.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

/// How an attack is shaped.
#[derive(Clone, Debug)]
pub struct HoldPlan {
    /// The p2p ports to attack (on 127.0.0.1).
    pub ports: Vec<u16>,
    /// Source addresses used: `127.0.0.{first_source} ..` onwards, one per address.
    pub first_source: u8,
    pub sources: u8,
    /// Connections held from each source address to each port.
    pub connections_per_source: usize,
    /// Every this-many-th connection sends garbage instead of staying idle (0: none).
    pub garbage_every: usize,
    /// How long a dropped connection waits before it is opened again (zero: at the next look,
    /// every 50 ms).
    pub reopen_after: Duration,
    /// The first openings are spread over this long, so that the connections' handshake
    /// timeouts do not all fall at once and leave every slot free together.
    pub spread_over: Duration,
}

/// What the attack did, so far.
#[derive(Debug, Default)]
pub struct HoldCounts {
    /// Connections opened (TCP accepted by the node's kernel).
    pub opened: AtomicU64,
    /// Connections the node closed.
    pub dropped: AtomicU64,
    /// Connects that failed (the node was down, say).
    pub connect_failed: AtomicU64,
}

/// A running attack; it stops, and every socket closes, when dropped (bounded: the attack
/// threads check their stop flag every few milliseconds).
#[derive(Debug)]
pub struct Hold {
    stop: Arc<AtomicBool>,
    pub counts: Arc<HoldCounts>,
    threads: Vec<JoinHandle<()>>,
}

/// One connection slot of the attack.
struct Slot {
    source: Ipv4Addr,
    port: u16,
    garbage: bool,
    stream: Option<TcpStream>,
    reopen_at: Instant,
}

/// How often the attack threads look at their sockets.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

impl Hold {
    /// Starts the attack: one thread per port, each holding its port's connections.
    pub fn start(plan: &HoldPlan) -> Hold {
        assert!(
            u16::from(plan.first_source) + u16::from(plan.sources) <= 255 && plan.first_source >= 2,
            "source addresses stay inside 127.0.0.2 ..= 127.0.0.254"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(HoldCounts::default());
        let mut threads = Vec::new();
        for &port in &plan.ports {
            let mut slots = Vec::new();
            let total = usize::from(plan.sources) * plan.connections_per_source;
            let started = Instant::now();
            for source in 0..plan.sources {
                for index in 0..plan.connections_per_source {
                    let number = usize::from(source) * plan.connections_per_source + index;
                    slots.push(Slot {
                        source: Ipv4Addr::new(127, 0, 0, plan.first_source + source),
                        port,
                        garbage: plan.garbage_every > 0
                            && number.is_multiple_of(plan.garbage_every),
                        stream: None,
                        reopen_at: started
                            + plan
                                .spread_over
                                .mul_f64(number as f64 / total.max(1) as f64),
                    });
                }
            }
            let stop = Arc::clone(&stop);
            let counts = Arc::clone(&counts);
            let reopen_after = plan.reopen_after;
            threads.push(std::thread::spawn(move || {
                hold_slots(slots, &stop, &counts, reopen_after)
            }));
        }
        Hold {
            stop,
            counts,
            threads,
        }
    }

    /// Stops the attack and waits for its threads (they close every socket).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.stop();
    }
}

fn hold_slots(
    mut slots: Vec<Slot>,
    stop: &AtomicBool,
    counts: &HoldCounts,
    reopen_after: Duration,
) {
    let mut buffer = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        for slot in &mut slots {
            match &mut slot.stream {
                Some(stream) => match stream.read(&mut buffer) {
                    // The node answered something (multistream-select): the socket stays
                    // idle from our side.
                    Ok(read) if read > 0 => {}
                    Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                    // End of stream, or reset: the node closed it.
                    _ => {
                        counts.dropped.fetch_add(1, Ordering::Relaxed);
                        slot.stream = None;
                        slot.reopen_at = now + reopen_after;
                    }
                },
                None if now >= slot.reopen_at => match connect_from(slot.source, slot.port) {
                    Ok(mut stream) => {
                        counts.opened.fetch_add(1, Ordering::Relaxed);
                        if slot.garbage {
                            // Where multistream-select expects a length prefix,
                            // a varint that never ends.
                            let _ = stream.write_all(&[0xff; 64]);
                        }
                        slot.stream = Some(stream);
                    }
                    Err(_) => {
                        counts.connect_failed.fetch_add(1, Ordering::Relaxed);
                        slot.reopen_at = now + reopen_after;
                    }
                },
                None => {}
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// A TCP connection to 127.0.0.1:`port` from `source` (any port), non-blocking once open.
fn connect_from(source: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into())?;
    socket.connect_timeout(
        &SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).into(),
        Duration::from_millis(500),
    )?;
    let stream: TcpStream = socket.into();
    stream.set_nonblocking(true)?;
    Ok(stream)
}

/// The value of the metric line `name` (with its labels, as exposed) in a `/metrics` text.
pub fn metric_value(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}
