//! The stored keys: one table, in the database of the service that serves the access RPCs.

use fulfillment_storage::paging::now;
use fulfillment_storage::{Database, DbFailure, classify};
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder};

use crate::AccessError;
use crate::key::{self, KeyKind, Scope};

/// A key as stored, without its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// `key_` and a UUID.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// The secret's visible start.
    pub prefix: String,
    /// Live, test, or a service's.
    pub kind: KeyKind,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// The service of the suite's that holds a service key.
    pub service: Option<String>,
    /// When it was made.
    pub created_time: DateTimeUtc,
    /// When it was revoked.
    pub revoked_time: Option<DateTimeUtc>,
}

impl ApiKey {
    /// Whether it carries `scope`. A service key may read and write in the mode of the call it serves.
    pub fn has(&self, scope: Scope) -> bool {
        match self.kind {
            // A service key reads and writes on behalf of the calls it serves, and never manages keys.
            KeyKind::Service => scope != Scope::Admin,
            KeyKind::Live | KeyKind::Test => self.scopes.contains(&scope),
        }
    }

    /// Whether it is a live key (service keys are listed and managed with the live keys).
    pub fn is_live(&self) -> bool {
        self.kind != KeyKind::Test
    }
}

/// What to make a key with.
#[derive(Clone, Debug)]
pub struct NewKey {
    /// A name for people.
    pub name: String,
    /// Live, test, or a service's.
    pub kind: KeyKind,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// For a service key, the service.
    pub service: Option<String>,
}

/// The services of the suite that may hold a service key.
pub const SERVICES: &[&str] = &["catalog", "reservation"];

/// The stored keys.
#[derive(Clone, Debug)]
pub struct Registry {
    db: Database,
    /// Answers about secrets, kept a short while so that a call costs no query; emptied by a
    /// revocation here, and expired in time for one made by another replica.
    remembered: Option<moka::future::Cache<Vec<u8>, Option<ApiKey>>>,
}

impl Registry {
    /// The keys in `db`, creating their table if needed.
    pub async fn open(db: Database) -> Result<Self, DbErr> {
        fulfillment_storage::migrate::<Migrator>(&db).await?;
        Ok(Self { db, remembered: None })
    }

    /// The same keys, each answer about a secret kept for `ttl` (none when zero).
    pub fn remembering(mut self, ttl: std::time::Duration) -> Self {
        self.remembered =
            (!ttl.is_zero()).then(|| moka::future::Cache::builder().max_capacity(10_000).time_to_live(ttl).build());
        self
    }

    /// Makes a key and answers it with its secret, which is not kept.
    pub async fn create(&self, new: NewKey) -> Result<(ApiKey, String), AccessError> {
        self.insert(new, None).await
    }

    async fn insert(&self, new: NewKey, secret: Option<&str>) -> Result<(ApiKey, String), AccessError> {
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
            return Err(AccessError::invalid("name", "A key needs a name of 1 to 255 printable characters."));
        }
        let mut scopes = new.scopes.clone();
        scopes.sort();
        scopes.dedup();
        if new.kind == KeyKind::Service && !scopes.is_empty() {
            return Err(AccessError::invalid("scopes", "A service key has no scopes of its own."));
        }
        let service = match (new.kind, new.service) {
            (KeyKind::Service, Some(service)) if SERVICES.contains(&service.as_str()) => Some(service),
            (KeyKind::Service, _) => {
                return Err(AccessError::invalid("service", "A service key names catalog or reservation."));
            }
            (_, None) => None,
            (_, Some(_)) => return Err(AccessError::invalid("service", "Only a service key names a service.")),
        };
        // A prefix that is taken already (one chance in 62^8) is drawn again.
        for _ in 0..3 {
            let made = match secret {
                Some(secret) => key::NewSecret {
                    secret: secret.to_owned(),
                    prefix: key::prefix_of(secret).unwrap_or_default().to_owned(),
                    hash: key::hash(secret),
                },
                None => key::generate(new.kind),
            };
            let key = ApiKey {
                id: format!("key_{}", uuid::Uuid::now_v7().simple()),
                name: name.clone(),
                prefix: made.prefix,
                kind: new.kind,
                scopes: scopes.clone(),
                service: service.clone(),
                created_time: now(),
                revoked_time: None,
            };
            let row = ActiveModel {
                id: Set(key.id.clone()),
                name: Set(key.name.clone()),
                prefix: Set(key.prefix.clone()),
                secret_hash: Set(made.hash),
                kind: Set(kind_name(key.kind).to_owned()),
                scopes: Set(scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")),
                service: Set(key.service.clone()),
                created_time: Set(key.created_time),
                revoked_time: Set(None),
            };
            match Entity::insert(row).exec(self.db.connection()).await {
                Ok(_) => return Ok((key, made.secret)),
                Err(error) if classify(&error) == DbFailure::UniqueViolation && secret.is_none() => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(AccessError::Internal("no free key prefix after three draws".into()))
    }

    /// Stores a key whose secret was made elsewhere (provisioning, the test harness): the secret must
    /// have the shape of one of `new.kind`. Importing the same secret again answers the stored key.
    pub async fn import(&self, new: NewKey, secret: &str) -> Result<ApiKey, AccessError> {
        let tag = match new.kind {
            KeyKind::Live => "fk_live_",
            KeyKind::Test => "fk_test_",
            KeyKind::Service => "fk_svc_",
        };
        let prefix = key::prefix_of(secret)
            .filter(|_| secret.starts_with(tag))
            .ok_or(AccessError::invalid("secret", "The secret does not have the shape of a key of this kind."))?;
        if let Some(stored) = self.stored(&new, secret, prefix).await? {
            return Ok(stored);
        }
        match self.insert(new.clone(), Some(secret)).await {
            Ok((key, _)) => Ok(key),
            // Another replica stored it first: what it stored must be the same key.
            Err(AccessError::Database(error)) if classify(&error) == DbFailure::UniqueViolation => {
                self.stored(&new, secret, prefix).await?.ok_or(AccessError::Database(error))
            }
            Err(error) => Err(error),
        }
    }

    /// The key stored under the secret's prefix, if any, when it is the one `new` describes.
    async fn stored(&self, new: &NewKey, secret: &str, prefix: &str) -> Result<Option<ApiKey>, AccessError> {
        let Some(row) = Entity::find().filter(Column::Prefix.eq(prefix)).one(self.db.connection()).await? else {
            return Ok(None);
        };
        if !key::matches(secret, &row.secret_hash) {
            return Err(AccessError::invalid("secret", "Another key has this prefix."));
        }
        let stored = from_row(row)?;
        let mut scopes = new.scopes.clone();
        scopes.sort();
        scopes.dedup();
        // The same secret given for another role (the Catalog's key as the Reservation
        // service's, say) must not quietly take the stored one's powers.
        if (stored.kind, &stored.service, &stored.scopes) != (new.kind, &new.service, &scopes) {
            return Err(AccessError::invalid("secret", "This secret is stored already for another role."));
        }
        if stored.revoked_time.is_some() {
            return Err(AccessError::invalid("secret", "This secret belongs to a revoked key."));
        }
        Ok(Some(stored))
    }

    /// The keys of one side, live (with the service keys) or test, newest first.
    pub async fn list(&self, live: bool, include_revoked: bool) -> Result<Vec<ApiKey>, AccessError> {
        let mut query = Entity::find().order_by_desc(Column::CreatedTime).order_by_desc(Column::Id);
        query = if live {
            query.filter(Column::Kind.ne(kind_name(KeyKind::Test)))
        } else {
            query.filter(Column::Kind.eq(kind_name(KeyKind::Test)))
        };
        if !include_revoked {
            query = query.filter(Column::RevokedTime.is_null());
        }
        query.all(self.db.connection()).await?.into_iter().map(from_row).collect()
    }

    /// Revokes a key of one side; a key of the other side is not found.
    pub async fn revoke(&self, id: &str, live: bool) -> Result<ApiKey, AccessError> {
        let not_found = || AccessError::NotFound(id.to_owned());
        let row = Entity::find_by_id(id.to_owned()).one(self.db.connection()).await?.ok_or_else(not_found)?;
        let key = from_row(row)?;
        if key.is_live() != live {
            return Err(not_found());
        }
        if key.revoked_time.is_some() {
            return Ok(key);
        }
        Entity::update_many()
            .col_expr(Column::RevokedTime, Expr::value(now()))
            .filter(Column::Id.eq(id))
            .filter(Column::RevokedTime.is_null())
            .exec(self.db.connection())
            .await?;
        if let Some(cache) = &self.remembered {
            cache.invalidate_all();
        }
        // Read back what is stored: of two revokes racing, the first one's time stands.
        let row = Entity::find_by_id(id.to_owned()).one(self.db.connection()).await?.ok_or_else(not_found)?;
        from_row(row)
    }

    /// What this replica remembers of `secret`, without a query: `None` when it must look.
    pub(crate) async fn remembered(&self, secret: &str) -> Option<Option<ApiKey>> {
        self.remembered.as_ref()?.get(&key::hash(secret)).await
    }

    /// The key `secret` belongs to, unless it is unknown or revoked.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<ApiKey>, AccessError> {
        let Some(cache) = &self.remembered else { return self.look_up(secret).await };
        let hash = key::hash(secret);
        if let Some(known) = cache.get(&hash).await {
            return Ok(known);
        }
        let found = self.look_up(secret).await?;
        cache.insert(hash, found.clone()).await;
        Ok(found)
    }

    async fn look_up(&self, secret: &str) -> Result<Option<ApiKey>, AccessError> {
        let Some(prefix) = key::prefix_of(secret) else { return Ok(None) };
        let row = Entity::find().filter(Column::Prefix.eq(prefix)).one(self.db.connection()).await?;
        match row {
            Some(row) if row.revoked_time.is_none() && key::matches(secret, &row.secret_hash) => {
                Ok(Some(from_row(row)?))
            }
            _ => Ok(None),
        }
    }
}

fn kind_name(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Live => "live",
        KeyKind::Test => "test",
        KeyKind::Service => "service",
    }
}

fn from_row(row: Model) -> Result<ApiKey, AccessError> {
    let corrupt = |what: &str| AccessError::Internal(format!("key {} has an unknown {what}", row.id));
    let kind = match row.kind.as_str() {
        "live" => KeyKind::Live,
        "test" => KeyKind::Test,
        "service" => KeyKind::Service,
        _ => return Err(corrupt("kind")),
    };
    let scopes = row
        .scopes
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| Scope::parse(s).ok_or_else(|| corrupt("scope")))
        .collect::<Result<_, _>>()?;
    Ok(ApiKey {
        id: row.id,
        name: row.name,
        prefix: row.prefix,
        kind,
        scopes,
        service: row.service,
        created_time: row.created_time,
        revoked_time: row.revoked_time,
    })
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_key")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    #[sea_orm(unique)]
    pub prefix: String,
    pub secret_hash: Vec<u8>,
    pub kind: String,
    /// Scope names separated by commas.
    pub scopes: String,
    pub service: Option<String>,
    pub created_time: DateTimeUtc,
    pub revoked_time: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The key table's migrations, tracked apart from those of the service whose database holds it.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl sea_orm_migration::MigratorTrait for Migrator {
    fn migration_table_name() -> sea_orm::DynIden {
        use sea_orm::sea_query::IntoIden;
        "seaql_migrations_access".into_iden()
    }

    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        vec![Box::new(CreateApiKey)]
    }
}

#[derive(sea_orm_migration::prelude::DeriveMigrationName)]
struct CreateApiKey;

#[async_trait::async_trait]
impl sea_orm_migration::MigrationTrait for CreateApiKey {
    #[allow(elided_lifetimes_in_paths)]
    async fn up(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        use sea_orm_migration::prelude::*;
        use sea_orm_migration::schema::*;
        manager
            .create_table(
                Table::create()
                    .table("api_key")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("name"))
                    .col(string_uniq("prefix"))
                    .col(binary("secret_hash"))
                    .col(string("kind"))
                    .col(string("scopes"))
                    .col(string_null("service"))
                    .col(timestamp_with_time_zone("created_time"))
                    .col(timestamp_with_time_zone_null("revoked_time"))
                    .to_owned(),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use fulfillment_storage::testing::TestDatabase;
    use fulfillment_storage::{Backend, PoolConfig};

    use super::*;

    async fn registry() -> (Registry, TestDatabase) {
        let database = TestDatabase::create(Backend::Sqlite).await.expect("a database");
        let db = Database::connect(database.url(), PoolConfig::default()).await.expect("connected");
        (Registry::open(db).await.expect("the key table"), database)
    }

    fn new_key(kind: KeyKind, scopes: &[Scope], service: Option<&str>) -> NewKey {
        NewKey { name: "k".into(), kind, scopes: scopes.to_vec(), service: service.map(str::to_owned) }
    }

    #[tokio::test]
    async fn a_key_is_found_by_its_secret_until_it_is_revoked() {
        let (registry, _db) = registry().await;
        let (key, secret) = registry.create(new_key(KeyKind::Test, &[Scope::Read], None)).await.expect("made");
        assert_eq!(registry.authenticate(&secret).await.expect("checked"), Some(key.clone()));
        assert_eq!(registry.authenticate(&secret.replace("fk_test_", "fk_live_")).await.expect("checked"), None);
        assert!(
            matches!(registry.revoke(&key.id, true).await, Err(AccessError::NotFound(_))),
            "a live admin does not see it"
        );
        assert_eq!(registry.list(true, true).await.expect("listed"), Vec::new());
        let revoked = registry.revoke(&key.id, false).await.expect("revoked");
        assert!(revoked.revoked_time.is_some());
        assert_eq!(registry.revoke(&key.id, false).await.expect("again").revoked_time, revoked.revoked_time);
        assert_eq!(registry.authenticate(&secret).await.expect("checked"), None);
        assert_eq!(registry.list(false, false).await.expect("listed"), Vec::new());
        assert_eq!(registry.list(false, true).await.expect("listed").len(), 1);
    }

    #[tokio::test]
    async fn a_remembered_key_is_forgotten_when_revoked_here() {
        let (registry, _db) = registry().await;
        let registry = registry.remembering(std::time::Duration::from_secs(60));
        let (key, secret) = registry.create(new_key(KeyKind::Live, &[Scope::Read], None)).await.expect("made");
        assert_eq!(registry.authenticate(&secret).await.expect("checked"), Some(key.clone()));
        registry.revoke(&key.id, true).await.expect("revoked");
        assert_eq!(registry.authenticate(&secret).await.expect("checked"), None, "not the remembered answer");
    }

    #[tokio::test]
    async fn a_service_key_never_manages_keys() {
        let (registry, _db) = registry().await;
        let refused = registry.create(new_key(KeyKind::Service, &[Scope::Admin], Some("catalog"))).await;
        assert!(matches!(refused, Err(AccessError::Invalid { field: "scopes", .. })));
        let (key, _) = registry.create(new_key(KeyKind::Service, &[], Some("catalog"))).await.expect("made");
        assert!(key.has(Scope::Read) && key.has(Scope::Write) && !key.has(Scope::Admin));
        let unknown = registry.create(new_key(KeyKind::Service, &[], Some("payments"))).await;
        assert!(matches!(unknown, Err(AccessError::Invalid { field: "service", .. })));
    }

    #[tokio::test]
    async fn an_imported_secret_keeps_the_role_it_was_stored_with() {
        let (registry, _db) = registry().await;
        let secret = "fk_svc_0123456789abcdefghij0123456789ABCDEFGHIJ";
        let catalog = registry.import(new_key(KeyKind::Service, &[], Some("catalog")), secret).await.expect("stored");
        let again = registry.import(new_key(KeyKind::Service, &[], Some("catalog")), secret).await.expect("the same");
        assert_eq!(again, catalog);
        let swapped = registry.import(new_key(KeyKind::Service, &[], Some("reservation")), secret).await;
        assert!(matches!(swapped, Err(AccessError::Invalid { field: "secret", .. })), "{swapped:?}");
        let misshapen = registry.import(new_key(KeyKind::Live, &[], None), secret).await;
        assert!(matches!(misshapen, Err(AccessError::Invalid { field: "secret", .. })));
        registry.revoke(&catalog.id, true).await.expect("revoked");
        let revoked = registry.import(new_key(KeyKind::Service, &[], Some("catalog")), secret).await;
        assert!(matches!(revoked, Err(AccessError::Invalid { field: "secret", .. })), "a revoked key stays revoked");
    }
}
