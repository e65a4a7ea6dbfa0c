//! Real networks for end-to-end tests: each validator runs in a Linux network namespace of its
//! own, as a host, connected to the others through a bridge, so that links can be cut, delayed
//! and made to lose packets by the kernel (`ip`, `tc ... netem`) rather than by a switch in the
//! node.
//!
//! The layout of one [`Lab`]: a hub namespace holding two bridges (`br0`, where every host is
//! plugged, and `br1`, the other side of a partition), and one namespace per host, each with
//! one veth pair: `eth0` in the host (address `10.88.0.N/24`), `hN` in the hub, on a bridge.
//! Nothing is added to the namespace the test runs in, so the machine's own network is never
//! touched, and the addresses cannot clash with anything outside the lab.
//!
//! A cut takes the hub's end of a host's link down; a partition moves hosts' hub ends to
//! `br1`; both drop packets silently, as a real failure does, and heal by undoing it. Delay and
//! loss are `netem` on each host's `eth0` (its outgoing side, so a link's delay is counted once
//! per direction) where the kernel has `sch_netem`; elsewhere netfilter on each host's incoming
//! side does the same: `iptables -m statistic` drops, and `NFQUEUE` hands packets to a thread
//! of the test that gives them back after the delay ([`Holder`]).
//!
//! The namespaces get names unique to the test run (the process id and a counter) and are
//! removed when the [`Lab`] is dropped, also when the test panics; the processes started in
//! them are ended first, by PID. The test process reaches the nodes' APIs from a thread that
//! enters the host's namespace for one request and then ends.

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{Network, hutong_binary};

/// The first three octets of every host address; host N (from 0) is `.N+1`.
const SUBNET: &str = "10.88.0";
/// How long one API request from the test may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Why these tests cannot run here, if they cannot: they need root (to make namespaces) and
/// the `ip` and `tc` commands of iproute2.
pub fn unavailable() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not running as root: network namespaces need root".into());
    }
    for tool in ["ip", "tc"] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !found {
            return Some(format!("`{tool}` (iproute2) is not installed"));
        }
    }
    None
}

/// Runs `ip` with `args`, panicking with its error output if it fails.
fn ip(args: &[&str]) {
    run("ip", args);
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{program} {}: {error}", args.join(" ")));
    assert!(
        output.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A host's address in the lab.
pub fn address(host: usize) -> String {
    format!("{SUBNET}.{}", host + 1)
}

/// Network namespaces wired as hosts on a bridge, with the node processes running in them.
#[derive(Debug)]
pub struct Lab {
    hub: String,
    hosts: Vec<String>,
    /// Node processes, by host; ended (by PID) before the namespaces are removed.
    children: Vec<Option<Child>>,
    /// How many namespaces were made, so that a failure half-way removes only those.
    created: Vec<String>,
    /// The threads that delay packets, when netfilter does it (see [`Lab::impair_all`]).
    holders: Vec<Holder>,
}

impl Lab {
    /// Makes `hosts` namespaces plugged into one bridge.
    pub fn new(hosts: usize) -> Self {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("hutong-{}-{run}", std::process::id());
        let mut lab = Lab {
            hub: format!("{prefix}-hub"),
            hosts: (0..hosts).map(|host| format!("{prefix}-{host}")).collect(),
            children: (0..hosts).map(|_| None).collect(),
            created: Vec::new(),
            holders: Vec::new(),
        };
        lab.add_namespace(&lab.hub.clone());
        let hub = lab.hub.clone();
        for bridge in ["br0", "br1"] {
            ip(&["-n", &hub, "link", "add", bridge, "type", "bridge"]);
            ip(&["-n", &hub, "link", "set", bridge, "up"]);
        }
        for (index, host) in lab.hosts.clone().iter().enumerate() {
            lab.add_namespace(host);
            let hub_end = format!("h{index}");
            ip(&[
                "-n", &hub, "link", "add", &hub_end, "type", "veth", "peer", "name", "eth0",
                "netns", host,
            ]);
            ip(&["-n", &hub, "link", "set", &hub_end, "master", "br0"]);
            ip(&["-n", &hub, "link", "set", &hub_end, "up"]);
            ip(&["-n", host, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                host,
                "addr",
                "add",
                &format!("{}/24", address(index)),
                "dev",
                "eth0",
            ]);
            ip(&["-n", host, "link", "set", "eth0", "up"]);
        }
        lab
    }

    fn add_namespace(&mut self, name: &str) {
        ip(&["netns", "add", name]);
        self.created.push(name.to_owned());
    }

    /// Rewrites the homes of `network` (made for loopback by [`Network`]) so that node N
    /// listens on host N's address and dials the others at theirs.
    pub fn place(&self, network: &mut Network) {
        assert_eq!(network.nodes.len(), self.hosts.len());
        let endpoints: Vec<(u16, String)> = network
            .nodes
            .iter()
            .map(|node| (node.p2p_port, node.api.clone()))
            .collect();
        for (index, node) in network.nodes.iter_mut().enumerate() {
            node.edit_config(|mut text| {
                for (other, (p2p_port, _)) in endpoints.iter().enumerate() {
                    text = text.replace(
                        &format!("/ip4/127.0.0.1/tcp/{p2p_port}\""),
                        &format!("/ip4/{}/tcp/{p2p_port}\"", address(other)),
                    );
                }
                let api_port = endpoints[index].1.rsplit(':').next().unwrap_or_default();
                text.replace(
                    &format!("\"127.0.0.1:{api_port}\""),
                    &format!("\"{}:{api_port}\"", address(index)),
                )
            });
            let api_port = endpoints[index].1.rsplit(':').next().unwrap_or_default();
            node.api = format!("http://{}:{api_port}", address(index));
        }
    }

    /// Starts `hutong run --home HOME` in host `index`'s namespace, its log in the home.
    pub fn start(&mut self, index: usize, home: &Path) {
        assert!(self.children[index].is_none(), "host {index} runs a node");
        let log = std::fs::File::create(home.join("node-netns.log")).expect("log file");
        // `ip netns exec` enters the namespace and then executes the node in its own process,
        // so the child's PID is the node's.
        let child = Command::new("ip")
            .args(["netns", "exec", &self.hosts[index]])
            .arg(hutong_binary())
            .args(["run", "--home"])
            .arg(home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start hutong run in a namespace");
        self.children[index] = Some(child);
    }

    /// Whether host `index`'s node still runs.
    pub fn is_running(&mut self, index: usize) -> bool {
        matches!(
            self.children[index].as_mut().map(Child::try_wait),
            Some(Ok(None))
        )
    }

    /// GET `url` from inside host `index`'s namespace: the status and the JSON body, or
    /// `None` when nothing answers.
    pub fn get(&self, index: usize, url: &str) -> Option<(u16, serde_json::Value)> {
        let namespace = Path::new("/run/netns").join(&self.hosts[index]);
        let url = url.to_owned();
        // setns moves only the calling thread: a thread of its own enters the namespace,
        // makes the request and ends, leaving the test's threads where they were.
        std::thread::spawn(move || {
            enter(&namespace).ok()?;
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(REQUEST_TIMEOUT))
                .http_status_as_error(false)
                .build()
                .into();
            let mut response = agent.get(&url).call().ok()?;
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().ok()?;
            Some((
                status,
                serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
            ))
        })
        .join()
        .ok()
        .flatten()
    }

    /// Takes host `index`'s link down at the hub: its packets go nowhere, silently.
    pub fn cut(&self, index: usize) {
        ip(&["-n", &self.hub, "link", "set", &format!("h{index}"), "down"]);
    }

    /// Brings host `index`'s link back up.
    pub fn heal(&self, index: usize) {
        ip(&["-n", &self.hub, "link", "set", &format!("h{index}"), "up"]);
    }

    /// Moves the hosts in `side` to the other bridge: they reach each other and nobody else.
    pub fn partition(&self, side: &[usize]) {
        for index in side {
            ip(&[
                "-n",
                &self.hub,
                "link",
                "set",
                &format!("h{index}"),
                "master",
                "br1",
            ]);
        }
    }

    /// Puts every host back on the one bridge.
    pub fn heal_partition(&self) {
        for index in 0..self.hosts.len() {
            ip(&[
                "-n",
                &self.hub,
                "link",
                "set",
                &format!("h{index}"),
                "master",
                "br0",
            ]);
        }
    }

    /// Why `netem` cannot be used here, if it cannot: a kernel built without `sch_netem`
    /// answers "Specified qdisc kind is unknown". Probed on the hub's loopback, inside the lab.
    pub fn netem_unavailable(&self) -> Option<String> {
        let output = Command::new("tc")
            .args([
                "-n", &self.hub, "qdisc", "add", "dev", "lo", "root", "netem",
            ])
            .args(["delay", "1ms"])
            .output()
            .ok()?;
        if !output.status.success() {
            return Some(format!(
                "tc netem is not available in this kernel: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        run(
            "tc",
            &["-n", &self.hub, "qdisc", "del", "dev", "lo", "root"],
        );
        None
    }

    /// Delays or drops the packets of every link, with `netem` on each host's outgoing side
    /// where the kernel has it, and otherwise with netfilter on each host's incoming side:
    /// `iptables -m statistic` drops a share of the packets at random, and the `NFQUEUE`
    /// target hands every packet to a thread of this process that gives it back to the
    /// kernel after the delay (see [`Holder`]). Either way a packet is delayed or dropped
    /// once per direction of a link. Returns the means used.
    pub fn impair_all(&mut self, impairment: Impairment) -> Result<Means, String> {
        if self.netem_unavailable().is_none() {
            let parameters = match impairment {
                Impairment::Delay(delay) => {
                    vec!["delay".to_owned(), format!("{}ms", delay.as_millis())]
                }
                Impairment::Loss { percent } => vec!["loss".to_owned(), format!("{percent}%")],
            };
            for host in &self.hosts {
                let mut args = vec![
                    "-n", host, "qdisc", "replace", "dev", "eth0", "root", "netem",
                ];
                args.extend(parameters.iter().map(String::as_str));
                run("tc", &args);
            }
            return Ok(Means::Netem);
        }
        if let Some(reason) = iptables_unavailable() {
            return Err(reason);
        }
        match impairment {
            Impairment::Loss { percent } => {
                assert!(percent > 0 && percent < 100, "a loss of {percent}%");
                let probability = format!("{:.4}", f64::from(percent) / 100.0);
                for host in &self.hosts {
                    // Rule 1 only counts what arrives; rule 2 drops a share of it.
                    in_namespace(host, "iptables", &["-A", "INPUT", "-i", "eth0"]);
                    in_namespace(
                        host,
                        "iptables",
                        &[
                            "-A",
                            "INPUT",
                            "-i",
                            "eth0",
                            "-m",
                            "statistic",
                            "--mode",
                            "random",
                            "--probability",
                            &probability,
                            "-j",
                            "DROP",
                        ],
                    );
                }
            }
            Impairment::Delay(delay) => {
                for host in self.hosts.clone() {
                    // The holder listens before any packet is queued; `--queue-bypass` lets
                    // packets through unheld if it is gone, so that the lab never wedges.
                    let holder = Holder::start(&host, delay)?;
                    self.holders.push(holder);
                    in_namespace(
                        &host,
                        "iptables",
                        &[
                            "-A",
                            "INPUT",
                            "-i",
                            "eth0",
                            "-j",
                            "NFQUEUE",
                            "--queue-num",
                            &HOLDER_QUEUE.to_string(),
                            "--queue-bypass",
                        ],
                    );
                }
            }
        }
        Ok(Means::Netfilter)
    }

    /// Packets host `index` dropped on its incoming side under a netfilter loss, and the
    /// packets that arrived there meanwhile: the counters of the two rules.
    pub fn netfilter_drops(&self, index: usize) -> (u64, u64) {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.hosts[index]])
            .args([
                "iptables",
                "-L",
                "INPUT",
                "-v",
                "-x",
                "-n",
                "--line-numbers",
            ])
            .output()
            .expect("iptables -L");
        let text = String::from_utf8_lossy(&output.stdout);
        let packets = |rule: &str| {
            text.lines()
                .map(|line| line.split_whitespace().collect::<Vec<_>>())
                .find(|fields| fields.first() == Some(&rule))
                .and_then(|fields| fields.get(1)?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (packets("2"), packets("1"))
    }

    /// How long a TCP connection from host `from` to the API of host `to` takes to open: one
    /// round trip of the link.
    pub fn connect_time(&self, from: usize, to: &str) -> Option<Duration> {
        let namespace = Path::new("/run/netns").join(&self.hosts[from]);
        let to: std::net::SocketAddr = to.parse().ok()?;
        std::thread::spawn(move || {
            enter(&namespace).ok()?;
            let started = Instant::now();
            std::net::TcpStream::connect_timeout(&to, REQUEST_TIMEOUT).ok()?;
            Some(started.elapsed())
        })
        .join()
        .ok()
        .flatten()
    }
}

/// What [`Lab::impair_all`] does to every link.
#[derive(Clone, Copy, Debug)]
pub enum Impairment {
    /// Every packet waits this long, once per direction.
    Delay(Duration),
    /// This share of the packets is dropped, at random, once per direction.
    Loss { percent: u32 },
}

/// How [`Lab::impair_all`] did it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Means {
    /// `tc netem` on each host's outgoing side.
    Netem,
    /// `iptables` on each host's incoming side (a kernel without `sch_netem`).
    Netfilter,
}

/// Why netfilter cannot impair links here, if it cannot: the `iptables` command is missing.
fn iptables_unavailable() -> Option<String> {
    let found = Command::new("iptables")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    (!found).then(|| "neither tc netem nor `iptables` is available".to_owned())
}

/// Runs `program` with `args` inside namespace `namespace`.
fn in_namespace(namespace: &str, program: &str, args: &[&str]) {
    let mut all = vec!["netns", "exec", namespace, program];
    all.extend_from_slice(args);
    run("ip", &all);
}

/// Moves the calling thread into the network namespace at `path` (setns moves only the
/// calling thread).
fn enter(path: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    rustix::thread::move_into_link_name_space(
        file.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )?;
    Ok(())
}

/// The netfilter queue each host's packets are held in (queues belong to a namespace).
const HOLDER_QUEUE: u16 = 0;
/// Packets the kernel keeps queued for a holder before it lets more through unheld
/// (`--queue-bypass`): far above what four validators send in a delay of 50 ms.
const HOLDER_QUEUE_PACKETS_MAX: u32 = 8_192;
/// How often a holder looks for packets that are due when none arrive.
const HOLDER_POLL: Duration = Duration::from_millis(1);

/// A thread in one host's namespace that takes the packets netfilter queues for it and gives
/// each back (accepted) once it has waited the delay: a delay of the link as the kernel sees
/// it, for kernels built without `sch_netem`. It stops, giving back what it holds, when
/// dropped.
#[derive(Debug)]
pub struct Holder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<u64, String>>>,
}

impl Holder {
    fn start(host: &str, delay: Duration) -> Result<Holder, String> {
        let namespace = Path::new("/run/netns").join(host);
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_sender, ready) = std::sync::mpsc::sync_channel(1);
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let queue = enter(&namespace)
                    .map_err(|error| format!("entering {}: {error}", namespace.display()))
                    .and_then(|()| open_queue().map_err(|error| format!("NFQUEUE: {error}")));
                let mut queue = match queue {
                    Ok(queue) => {
                        let _ = ready_sender.send(Ok(()));
                        queue
                    }
                    Err(error) => {
                        let _ = ready_sender.send(Err(error.clone()));
                        return Err(error);
                    }
                };
                hold(&mut queue, delay, &stop).map_err(|error| format!("NFQUEUE: {error}"))
            })
        };
        match ready.recv_timeout(REQUEST_TIMEOUT) {
            Ok(Ok(())) => Ok(Holder {
                stop,
                thread: Some(thread),
            }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err("the packet holder did not start".to_owned()),
        }
    }
}

fn open_queue() -> std::io::Result<nfq::Queue> {
    let mut queue = nfq::Queue::open()?;
    queue.bind(HOLDER_QUEUE)?;
    queue.set_queue_max_len(HOLDER_QUEUE, HOLDER_QUEUE_PACKETS_MAX)?;
    queue.set_nonblocking(true);
    Ok(queue)
}

/// Holds every queued packet for `delay`, in arrival order, until `stop`; then gives back what
/// it holds. Returns how many packets it delayed.
fn hold(queue: &mut nfq::Queue, delay: Duration, stop: &AtomicBool) -> std::io::Result<u64> {
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    let mut delayed = 0;
    while !stop.load(Ordering::Relaxed) {
        loop {
            match queue.recv() {
                Ok(message) => held.push_back((Instant::now() + delay, message)),
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(error) => return Err(error),
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            let (_, mut message) = held.pop_front().expect("a held packet");
            message.set_verdict(nfq::Verdict::Accept);
            queue.verdict(message)?;
            delayed += 1;
        }
        std::thread::sleep(HOLDER_POLL);
    }
    for (_, mut message) in held {
        message.set_verdict(nfq::Verdict::Accept);
        queue.verdict(message)?;
    }
    Ok(delayed)
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            match thread.join() {
                Ok(Ok(delayed)) => eprintln!("packet holder: {delayed} packets delayed"),
                Ok(Err(error)) => eprintln!("packet holder failed: {error}"),
                Err(_) => eprintln!("packet holder panicked"),
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The holders give back what they hold before the namespaces go.
        self.holders.clear();
        for child in self.children.iter_mut().filter_map(Option::take) {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting a namespace removes the veth ends and bridges inside it. Errors are only
        // reported: a drop during a panic must not panic again.
        for name in self.created.iter().rev() {
            let result = Command::new("ip")
                .args(["netns", "delete", name])
                .stderr(Stdio::null())
                .status();
            if !result.is_ok_and(|status| status.success()) {
                eprintln!("could not remove network namespace {name}");
            }
        }
    }
}
