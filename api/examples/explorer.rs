//! Serves the API and the explorer over a generated chain on 127.0.0.1, for trying the pages
//! in a browser and for `.ci/browser-test`.
//!
//! `cargo run -p hutong-api --example explorer -- [LICENCES] [PORT] [unlimited]` (defaults: 200
//! licences, a free port; `unlimited` lifts the per-client rate limit for load tests from one
//! address). It prints `listening http://127.0.0.1:PORT` and one licence of each kind. With
//! `HUTONG_EXPLORER_REDB=DIR` the chain is built in a new redb store in `DIR` (the node's
//! default engine, synced per block) instead of memory; with `HUTONG_EXPLORER_NUMBERS=FILE`
//! it writes 5,000 licence numbers spread over the chain to `FILE` for `examples/verify.lua`
//! (a `wrk` script of verification requests).

use std::net::SocketAddr;
use std::sync::Arc;

use hutong_api::testkit::{StoreNode, demo_chain, demo_chain_in};
use hutong_api::{ApiConfig, ApiState, router};

/// The allocator of the `hutong` binary (ADR 0010), so that load tests of this server measure
/// what a node serves.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let licences: u64 = arguments
        .next()
        .and_then(|text| text.parse().ok())
        .unwrap_or(200);
    let port: u16 = arguments
        .next()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0);
    let unlimited = arguments.next().as_deref() == Some("unlimited");
    let mut config = ApiConfig::default();
    if unlimited {
        config.client_requests_per_second = u32::MAX / 4;
        config.client_burst = u32::MAX / 4;
    }
    let chain = match std::env::var_os("HUTONG_EXPLORER_REDB") {
        Some(directory) => {
            let backend = hutong_ledger::store::Engine::Redb
                .open(
                    std::path::Path::new(&directory),
                    hutong_ledger::store::Durability::Synced,
                )
                .map_err(std::io::Error::other)?;
            demo_chain_in(backend, licences)
        }
        None => demo_chain(licences),
    };
    let node = Arc::new(StoreNode::new(
        chain.store.clone(),
        chain.fixture.node_keys[0].public_key(),
        10_000,
    ));
    let state = ApiState::new(chain.store.clone(), node, config).map_err(std::io::Error::other)?;
    if let Some(path) = std::env::var_os("HUTONG_EXPLORER_NUMBERS") {
        // 5,000 licence numbers spread over the chain, for `examples/verify.lua`.
        let numbers = &chain.facts.qingdao_numbers;
        let step = (numbers.len() / 5000).max(1);
        let list: Vec<String> = numbers
            .iter()
            .step_by(step)
            .map(|n| n.to_string())
            .collect();
        std::fs::write(path, list.join("\n") + "\n")?;
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    println!("listening http://{address}");
    println!("valid business-licence/{}", chain.facts.qingdao_numbers[5]);
    println!("revoked business-licence/{}", chain.facts.revoked);
    println!("suspended business-licence/{}", chain.facts.suspended);
    println!("disputed business-licence/{}", chain.facts.disputed);
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
