//! The newcomer's path: the launcher's first start makes a test key and prints it, the key works,
//! and the next start prints the same key.

use fulfillment_proto::inventory::v1 as inv;
use fulfillment_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Starts the launcher in `folder` on free ports; answers the process, the printed key and the
/// Inventory's address.
async fn launch(folder: &std::path::Path) -> (tokio::process::Child, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_launcher"));
    command.current_dir(folder).stdout(std::process::Stdio::piped()).kill_on_drop(true);
    for prefix in ["CATALOG", "INVENTORY", "RESERVATION"] {
        command.env(format!("{prefix}_LISTEN_ADDR"), "127.0.0.1:0").env(format!("{prefix}_METRICS_ADDR"), "off");
    }
    let mut child = command.spawn().expect("the launcher starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut key, mut inventory) = (None, None);
    while key.is_none() || inventory.is_none() {
        let line = lines.next_line().await.expect("a line").expect("the launcher prints its key and addresses");
        if let Some(rest) = line.strip_prefix("test API key") {
            key = rest.split_whitespace().next().map(str::to_owned);
        }
        if let Some(rest) = line.strip_prefix("inventory") {
            let address = rest.trim().trim_start_matches("listening on ").split(',').next().map(str::to_owned);
            inventory = address.map(|a| format!("http://{a}"));
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, key.unwrap_or_default(), inventory.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_prints_a_test_key_that_works_and_keeps_it() {
    let folder = tempfile::tempdir().expect("a folder");
    let (mut launcher, key, inventory) = launch(folder.path()).await;
    assert!(key.starts_with("fk_test_"), "a test key: {key}");

    let channel = tonic::transport::Endpoint::try_from(inventory).expect("a URL").connect().await.expect("connected");
    let mut client = InventoryServiceClient::new(channel);
    let mut request = tonic::Request::new(inv::CreateInventoryItemRequest {
        inventory_item: Some(inv::InventoryItem { id: "first".into(), ..Default::default() }),
    });
    request.metadata_mut().insert("authorization", format!("Bearer {key}").parse().expect("a header value"));
    let item = client.create_inventory_item(request).await.expect("the key writes").into_inner();
    assert!(!item.inventory_item.expect("item").live_mode, "a test key makes test objects");
    let anonymous = client.list_inventory_items(inv::ListInventoryItemsRequest::default()).await;
    assert_eq!(anonymous.expect_err("no key").code(), tonic::Code::Unauthenticated);

    launcher.kill().await.expect("stopped");
    let (_launcher, again, _) = launch(folder.path()).await;
    assert_eq!(again, key, "the next start shows the same key");
}
