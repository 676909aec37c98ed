//! What the tests share: the document's example SKU and readers of error details.

use fulfillment_proto::catalog::v1 as pb;
use fulfillment_proto::catalog::v1::catalog_service_client::CatalogServiceClient;
use tonic_types::StatusExt;

pub type Client = CatalogServiceClient<suite_tests::KeyedChannel>;

/// The document's "Creating and updating a SKU" example: a physical SKU with the four required fields.
pub fn example_sku(id: &str) -> pb::Sku {
    pb::Sku {
        id: id.to_owned(),
        eccn: "EAR99".into(),
        country_of_origin: "US".into(),
        tax_code: "4323.310_A".into(),
        part_number: "100-440-0.750-3434-A".into(),
        name: "Test Product".into(),
        ..Default::default()
    }
}

/// The document's managed SKU example, naming a registered manufacturer part.
pub fn managed_sku(id: &str) -> pb::Sku {
    pb::Sku {
        id: id.to_owned(),
        eccn: "EAR99".into(),
        country_of_origin: "DE".into(),
        tax_code: "4323.310_A".into(),
        part_number: "DEMOPARTNUMBER2".into(),
        manufacturer_id: "20013".into(),
        name: format!("name_{id}"),
        weight: Some(8.88),
        weight_unit: "oz".into(),
        metadata: [("application".to_owned(), "iOS-LLL".to_owned())].into(),
        managed_fulfillment: "DRGlobalFulfillment".into(),
        ..Default::default()
    }
}

pub async fn create(client: &mut Client, sku: pb::Sku) -> Result<pb::Sku, tonic::Status> {
    let response = client.create_sku(pb::CreateSkuRequest { sku: Some(sku) }).await?;
    Ok(response.into_inner().sku.expect("the response carries the SKU"))
}

pub async fn get(client: &mut Client, id: &str) -> Result<pb::Sku, tonic::Status> {
    let response = client.get_sku(pb::GetSkuRequest { id: id.to_owned() }).await?;
    Ok(response.into_inner().sku.expect("the response carries the SKU"))
}

pub async fn register_part(client: &mut Client, manufacturer_id: &str, part_number: &str) {
    client
        .register_manufacturer_part(pb::RegisterManufacturerPartRequest {
            manufacturer_id: manufacturer_id.to_owned(),
            part_number: part_number.to_owned(),
        })
        .await
        .expect("registering a part succeeds");
}

/// The `BadRequest` violations of a status, as (field, description) pairs.
pub fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| (v.field, v.description)).collect())
        .unwrap_or_default()
}

/// The `ErrorInfo` reason of a status.
pub fn reason(status: &tonic::Status) -> String {
    status.get_details_error_info().map(|info| info.reason).unwrap_or_default()
}

/// Asserts a single-violation INVALID_ARGUMENT with the document's parameter and message.
pub fn assert_invalid(status: &tonic::Status, parameter: &str, message: &str) {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert_eq!(violations(status), vec![(parameter.to_owned(), message.to_owned())]);
    assert_eq!(status.message(), message);
}

/// A timestamp as a comparable pair.
pub fn instant(timestamp: &Option<prost_types::Timestamp>) -> (i64, i32) {
    let timestamp = (*timestamp).expect("a timestamp");
    (timestamp.seconds, timestamp.nanos)
}

// The serializable pass of CI sets `TEST_DATABASE_ISOLATION`: every test database must then run at
// that level, or the pass would prove nothing.
#[tokio::test]
#[cfg_attr(not(postgres_tests), ignore = "TEST_DATABASE_URL is not set")]
async fn a_test_database_runs_at_the_isolation_asked_for() {
    use sea_orm::{ConnectionTrait, Statement};

    suite_tests::require_postgres();
    let database =
        fulfillment_storage::testing::TestDatabase::create(suite_tests::Backend::Postgres).await.expect("a database");
    let db = fulfillment_storage::Database::connect(database.url(), fulfillment_storage::PoolConfig::default())
        .await
        .expect("connected");
    let row = db
        .connection()
        .query_one_raw(Statement::from_string(sea_orm::DbBackend::Postgres, "SHOW transaction_isolation"))
        .await
        .expect("shown")
        .expect("a row");
    let level: String = row.try_get_by_index(0).expect("text");
    let asked = fulfillment_storage::testing::isolation().expect("a valid level");
    assert_eq!(level, asked.unwrap_or("read committed"));
}
