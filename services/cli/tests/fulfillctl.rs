//! fulfillctl against a real Catalog: the README's quick start, command by command.

use std::process::Output;

use suite_tests::{Backend, Spawn};

async fn fulfillctl(address: std::net::SocketAddr, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_fulfillctl"))
        .env("FULFILLMENT_API_KEY", suite_tests::keys::LIVE)
        .arg("--catalog")
        .arg(format!("http://{address}"))
        .args(args)
        .output()
        .await
        .expect("fulfillctl runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_works_as_written() {
    let (catalog, _client) = Spawn::on(Backend::Sqlite).catalog_and_inventory().await;
    let address = catalog.address;

    let registered = fulfillctl(address, &["part", "register", "20013", "DEMOPARTNUMBER2"]).await;
    assert!(registered.status.success(), "{}", stderr(&registered));

    let created = fulfillctl(
        address,
        &[
            "sku",
            "create",
            "--id",
            "sku_demo",
            "--name",
            "Demo",
            "--eccn",
            "EAR99",
            "--tax-code",
            "4323.310_A",
            "--country-of-origin",
            "DE",
            "--part-number",
            "DEMOPARTNUMBER2",
            "--manufacturer-id",
            "20013",
            "--weight",
            "8.88",
            "--metadata",
            "application=iOS-LLL",
            "--managed",
        ],
    )
    .await;
    assert!(created.status.success(), "{}", stderr(&created));
    let text = stdout(&created);
    assert!(text.contains("managed_fulfillment  DRGlobalFulfillment"), "{text}");
    assert!(text.contains("weight               8.88 oz"), "{text}");

    let checked = fulfillctl(address, &["check"]).await;
    assert!(checked.status.success(), "{}", stdout(&checked));
    assert!(stdout(&checked).starts_with("consistent"), "{}", stdout(&checked));

    let shown = fulfillctl(address, &["sku", "get", "sku_demo"]).await;
    assert!(stdout(&shown).contains("physical             true"), "{}", stdout(&shown));

    let cleared = fulfillctl(address, &["sku", "update", "--id", "sku_demo", "--clear", "managed_fulfillment"]).await;
    assert!(cleared.status.success(), "{}", stderr(&cleared));
    assert!(!stdout(&cleared).contains("managed_fulfillment"), "{}", stdout(&cleared));

    let listed = fulfillctl(address, &["sku", "list"]).await;
    assert!(stdout(&listed).lines().any(|line| line.starts_with("sku_demo ")), "{}", stdout(&listed));

    let deleted = fulfillctl(address, &["sku", "delete", "sku_demo"]).await;
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    let missing = fulfillctl(address, &["sku", "get", "sku_demo"]).await;
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("error: NotFound: SKU 'sku_demo' not found."), "{}", stderr(&missing));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_show_every_detail_plainly() {
    let (catalog, _client) = Spawn::on(Backend::Sqlite).catalog_and_inventory().await;
    let output = fulfillctl(
        catalog.address,
        &[
            "sku",
            "create",
            "--name",
            "x",
            "--eccn",
            "EAR99",
            "--tax-code",
            "4323.310_A",
            "--country-of-origin",
            "KP",
            "--hs-code",
            "1234.56.YW",
        ],
    )
    .await;
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(text.contains("  countryOfOrigin: 'KP' is not a valid Country of Origin."), "{text}");
    assert!(text.contains("  hsCode: '1234.56.YW' is not a valid HS code."), "{text}");
    assert!(text.contains("reason: invalid_parameter"), "{text}");
}

#[tokio::test]
async fn an_unreachable_catalog_is_said_plainly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let output = fulfillctl(address, &["sku", "get", "x"]).await;
    assert!(!output.status.success());
    assert!(stderr(&output).contains("cannot reach the catalog"), "{}", stderr(&output));
}

async fn inventoryctl(address: std::net::SocketAddr, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_fulfillctl"))
        .env("FULFILLMENT_API_KEY", suite_tests::keys::LIVE)
        .arg("--inventory")
        .arg(format!("http://{address}"))
        .args(args)
        .output()
        .await
        .expect("fulfillctl runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warehouses_stock_and_levels_from_the_command_line() {
    let (inventory, _client) = Spawn::on(Backend::Sqlite).inventory().await;
    let address = inventory.address;
    let steps: [&[&str]; 5] = [
        &[
            "warehouse",
            "create",
            "--id",
            "us-east",
            "--name",
            "US East",
            "--country",
            "US",
            "--ships-to",
            "US,CA",
            "--priority",
            "1",
        ],
        &["item", "create", "--id", "sku_demo", "--country-of-origin", "DE"],
        &["stock", "receive", "sku_demo", "us-east", "10", "--key", "delivery-1"],
        &["stock", "receive", "sku_demo", "us-east", "10", "--key", "delivery-1"],
        &["stock", "adjust", "sku_demo", "us-east", "-2", "--reason", "damaged"],
    ];
    for step in steps {
        let output = inventoryctl(address, step).await;
        assert!(output.status.success(), "{step:?}: {}", stderr(&output));
    }
    let levels = inventoryctl(address, &["levels", "sku_demo", "--ship-to", "CA"]).await;
    let text = stdout(&levels);
    let total = text.lines().find(|line| line.contains("(total)")).expect("a total line");
    let numbers: Vec<&str> = total.split_whitespace().skip(2).collect();
    assert_eq!(numbers, ["8", "0", "8"], "the retried delivery applied once: {text}");

    let ledger = inventoryctl(address, &["stock", "ledger", "sku_demo"]).await;
    let text = stdout(&ledger);
    assert_eq!(text.lines().count(), 3, "a header and two movements: {text}");
    assert!(text.contains("damaged"), "{text}");

    let shown = inventoryctl(address, &["warehouse", "get", "us-east"]).await;
    assert!(stdout(&shown).contains("ships_to             CA,US"), "{}", stdout(&shown));
    let refused = inventoryctl(address, &["warehouse", "delete", "us-east"]).await;
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("still holds stock"), "{}", stderr(&refused));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_show_cancel_and_fulfill_from_the_command_line() {
    let (inventory, _client) = Spawn::on(Backend::Sqlite).inventory().await;
    let (reservation, _client) = Spawn::on(Backend::Sqlite).reservation(inventory.address).await;
    let run = |args: Vec<String>| {
        let (inventory, reservation) = (inventory.address, reservation.address);
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_fulfillctl"))
                .env("FULFILLMENT_API_KEY", suite_tests::keys::LIVE)
                .arg("--inventory")
                .arg(format!("http://{inventory}"))
                .arg("--reservation")
                .arg(format!("http://{reservation}"))
                .args(args)
                .output()
                .await
                .expect("fulfillctl runs")
        }
    };
    let words = |line: &str| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    for step in [
        "warehouse create --id w --name W --country US --ships-everywhere",
        "item create --id sku_demo",
        "stock receive sku_demo w 5",
    ] {
        let output = run(words(step)).await;
        assert!(output.status.success(), "{step}: {}", stderr(&output));
    }
    let reserved = run(words("reserve --id checkout-1 --item sku_demo=2 --country US --shipping USD:5.95:SG")).await;
    assert!(reserved.status.success(), "{}", stderr(&reserved));
    assert!(stdout(&reserved).contains("held                 sku_demo x2 in w"), "{}", stdout(&reserved));

    let shown = run(words("reservation show checkout-1")).await;
    assert!(stdout(&shown).contains("state                active"), "{}", stdout(&shown));
    let short = run(words("reserve --id checkout-2 --item sku_demo=9 --country US")).await;
    assert!(!short.status.success());
    assert!(
        stderr(&short).contains("sku_demo (insufficient_inventory): requested 9, available 3"),
        "{}",
        stderr(&short)
    );

    let fulfilled = run(words("fulfill checkout-1 --upstream-id order-7")).await;
    assert!(fulfilled.status.success(), "{}", stderr(&fulfilled));
    assert!(stdout(&fulfilled).contains("sku_demo x2 from w"), "{}", stdout(&fulfilled));

    let again = run(words("reserve --id checkout-3 --item sku_demo=1 --country US")).await;
    assert!(again.status.success(), "{}", stderr(&again));
    let cancelled = run(words("reservation cancel checkout-3")).await;
    assert!(stdout(&cancelled).contains("state                cancelled"), "{}", stdout(&cancelled));
    let levels = run(words("levels sku_demo")).await;
    let total = stdout(&levels).lines().find(|l| l.contains("(total)")).map(words).expect("a total line");
    assert_eq!(total[2..], ["3", "0", "3"], "two shipped, one released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_created_listed_and_revoked_from_the_command_line() {
    let (inventory, _client) = Spawn::on(Backend::Sqlite).inventory().await;
    let created = inventoryctl(inventory.address, &["keys", "create", "--name", "reporting", "--scope", "read"]).await;
    assert!(created.status.success(), "{}", stderr(&created));
    let text = stdout(&created);
    let secret = text.lines().find_map(|line| line.strip_prefix("secret: ")).expect("the secret is shown").to_owned();
    assert!(secret.starts_with("fk_live_"), "{text}");
    let id = text.split_whitespace().next().expect("the key's id").to_owned();

    // The new key reads but does not write.
    let as_reader = |args: &'static [&'static str]| {
        let secret = secret.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_fulfillctl"))
                .env("FULFILLMENT_API_KEY", secret)
                .arg("--inventory")
                .arg(format!("http://{}", inventory.address))
                .args(args)
                .output()
                .await
                .expect("fulfillctl runs")
        }
    };
    assert!(as_reader(&["warehouse", "list"]).await.status.success());
    let refused =
        as_reader(&["warehouse", "create", "--id", "w", "--name", "W", "--country", "US", "--ships-everywhere"]).await;
    assert!(stderr(&refused).contains("PermissionDenied"), "{}", stderr(&refused));

    let listed = inventoryctl(inventory.address, &["keys", "list"]).await;
    assert!(stdout(&listed).contains("reporting"), "{}", stdout(&listed));
    assert!(!stdout(&listed).contains(&secret), "a listing never shows a secret");

    let revoked = inventoryctl(inventory.address, &["keys", "revoke", &id]).await;
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let after = as_reader(&["warehouse", "list"]).await;
    assert!(stderr(&after).contains("Unauthenticated"), "{}", stderr(&after));
}
