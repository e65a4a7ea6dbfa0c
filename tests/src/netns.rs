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
//! per direction).
//!
//! The namespaces get names unique to the test run (the process id and a counter) and are
//! removed when the [`Lab`] is dropped, also when the test panics; the processes started in
//! them are ended first, by PID. The test process reaches the nodes' APIs from a thread that
//! enters the host's namespace for one request and then ends.

use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

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
            let file = std::fs::File::open(&namespace).ok()?;
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .ok()?;
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

    /// Applies `netem` with `parameters` (for example `["delay", "50ms"]` or `["loss", "5%"]`)
    /// to every host's outgoing side.
    pub fn netem_all(&self, parameters: &[&str]) {
        for host in &self.hosts {
            let mut args = vec![
                "-n", host, "qdisc", "replace", "dev", "eth0", "root", "netem",
            ];
            args.extend_from_slice(parameters);
            run("tc", &args);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
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
