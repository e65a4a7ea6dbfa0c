//! A local network for a first look: four validators on loopback with some demo licences,
//! until Ctrl-C. Run it with `scripts/local-network` (which builds the node first).

use std::time::Duration;

use hutong_ledger::records::StatusAction;
use hutong_ledger::testkit::DAY_MS;
use hutong_ledger::tx::TxBody;
use hutong_tests::Network;

fn main() {
    let mut network = Network::new(4);
    network.start_all();
    network.wait_for("the first block", Duration::from_secs(60), |network| {
        network
            .heights()
            .iter()
            .all(|height| height.is_some_and(|height| height >= 1))
    });
    // Demo data: Qingdao and Jining business licences; a few suspended or revoked.
    let mut numbers = Vec::new();
    for n in 1..=200u64 {
        let (issuer, region, node) = if n % 4 == 0 {
            ("jn-approval", "370800", 2)
        } else {
            ("qd-approval", "370200", 0)
        };
        let transaction = network.fixture.issue_business_licence(issuer, region, n);
        if let TxBody::IssueLicence { number, .. } = &transaction.payload.body {
            numbers.push(number.clone());
        }
        let _ = network.nodes[node].submit(&transaction);
    }
    std::thread::sleep(Duration::from_secs(3));
    for (index, number) in numbers
        .iter()
        .take(12)
        .enumerate()
        .filter(|(index, _)| index % 4 != 3)
    {
        let action = if index % 2 == 0 {
            StatusAction::Suspend
        } else {
            StatusAction::Revoke
        };
        let transaction = network.fixture.tx(
            "qd-market",
            TxBody::ChangeStatus {
                type_code: "business-licence".into(),
                number: number.clone(),
                action,
                effective_at: hutong_ledger::testkit::GENESIS_TIME + DAY_MS,
                reason: "市场监管检查 / market inspection".into(),
            },
        );
        let _ = network.nodes[1].submit(&transaction);
    }
    println!(
        "\nhutong local network (chain {}), data in {}",
        network.fixture.genesis.chain_id,
        network.directory.path().display()
    );
    println!("{:<8} {:<10} {:<28} explorer", "node", "role", "API");
    for node in &network.nodes {
        println!(
            "{:<8} {:<10} {:<28} {}/",
            node.name, "validator", node.api, node.api
        );
    }
    if let Some(number) = numbers.first() {
        println!(
            "\ntry: curl {}/v1/licences/business-licence/{number}/verification?region=650100",
            network.nodes[0].api
        );
    }
    println!("press Ctrl-C to stop every node");
    loop {
        std::thread::sleep(Duration::from_secs(5));
        let heights = network.heights();
        println!("heights: {heights:?}");
    }
}
