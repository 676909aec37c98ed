//! Keyset pagination shared by every List call: pages ordered by (created time, id), and a page
//! token that names the last row seen. Rows added while a client pages never shift the pages it has
//! not read yet, so nothing is skipped or repeated.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fulfillment_errors::FieldViolation;
use sea_orm::Condition;
use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::{Expr, ExprTrait, IntoColumnRef};

/// The page size when a caller gives none.
pub const DEFAULT_PAGE_SIZE: u64 = 10;
/// The largest page a caller may ask for.
pub const MAX_PAGE_SIZE: u64 = 100;

/// Checks a requested page size: 0 means the default, otherwise 1 to [`MAX_PAGE_SIZE`].
pub fn page_size(requested: i32) -> Result<u64, FieldViolation> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n > 0 && n as u64 <= MAX_PAGE_SIZE => Ok(n as u64),
        n => Err(FieldViolation::not_valid(
            "pageSize",
            &n.to_string(),
            &format!("page size. It must be between 1 and {MAX_PAGE_SIZE}"),
        )),
    }
}

/// The longest token `encode` makes (for ids of at most a few hundred characters).
const MAX_TOKEN_LEN: usize = 2048;
/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in microseconds: the range both databases store.
const MIN_MICROS: i64 = -62_135_596_800_000_000;
const MAX_MICROS: i64 = 253_402_300_799_999_999;

/// Where the next page starts: after this row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The last row's creation time, in microseconds since the epoch.
    pub created_micros: i64,
    /// The last row's id.
    pub id: String,
}

impl Cursor {
    /// The cursor after a row.
    pub fn after(created_time: DateTimeUtc, id: &str) -> Self {
        Self { created_micros: created_time.timestamp_micros(), id: id.to_owned() }
    }

    /// The opaque token handed to the client.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.created_micros, self.id))
    }

    /// Reads a client's token; an empty token means the first page.
    pub fn decode(token: &str) -> Result<Option<Self>, FieldViolation> {
        if token.is_empty() {
            return Ok(None);
        }
        let invalid = || FieldViolation::not_valid("pageToken", token, "page token");
        if token.len() > MAX_TOKEN_LEN {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (micros, id) = text.split_once(':').ok_or_else(invalid)?;
        let created_micros: i64 = micros.parse().map_err(|_| invalid())?;
        // Tokens are made by `encode`: a time outside the stored range or a NUL means it was not.
        if !(MIN_MICROS..=MAX_MICROS).contains(&created_micros) || id.contains('\0') {
            return Err(invalid());
        }
        Ok(Some(Self { created_micros, id: id.to_owned() }))
    }

    /// The condition selecting rows after the cursor in (created time, id) order.
    pub fn condition(&self, created_column: impl IntoColumnRef, id_column: impl IntoColumnRef) -> Condition {
        let created = DateTimeUtc::from_timestamp_micros(self.created_micros).unwrap_or_default();
        let created_column = created_column.into_column_ref();
        let later = Expr::col(created_column.clone()).gt(created);
        let same_time_higher_id =
            Expr::col(created_column).eq(created).and(Expr::col(id_column.into_column_ref()).gt(self.id.clone()));
        Condition::any().add(later).add(same_time_higher_id)
    }
}

/// A half-open time range filter: `start <= t < end`, either bound optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive lower bound.
    pub start: Option<DateTimeUtc>,
    /// Exclusive upper bound.
    pub end: Option<DateTimeUtc>,
}

impl TimeRange {
    /// The condition selecting rows whose `column` falls in the range.
    pub fn condition(&self, column: impl IntoColumnRef) -> Condition {
        let column = column.into_column_ref();
        let mut condition = Condition::all();
        if let Some(start) = self.start {
            condition = condition.add(Expr::col(column.clone()).gte(start));
        }
        if let Some(end) = self.end {
            condition = condition.add(Expr::col(column).lt(end));
        }
        condition
    }
}

/// The current time at the microsecond precision both databases store, so a value read back
/// equals the value written.
pub fn now() -> DateTimeUtc {
    let now = chrono::Utc::now();
    DateTimeUtc::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// One page of results and the token of the next, empty on the last page.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// The token of the next page; empty when there is none.
    pub next_page_token: String,
}

impl<T> Page<T> {
    /// Builds a page from up to `size + 1` rows fetched in order: the extra row only tells that
    /// another page exists.
    pub fn from_rows(mut rows: Vec<T>, size: u64, cursor_of: impl Fn(&T) -> Cursor) -> Self {
        let has_more = rows.len() as u64 > size;
        rows.truncate(size as usize);
        let next_page_token = match rows.last() {
            Some(last) if has_more => cursor_of(last).encode(),
            _ => String::new(),
        };
        Self { items: rows, next_page_token }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_and_bounds() {
        assert_eq!(page_size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(1), Ok(1));
        assert_eq!(page_size(100), Ok(100));
        for bad in [-1, 101, i32::MAX, i32::MIN] {
            let violation = page_size(bad).expect_err("out of range");
            assert_eq!(violation.parameter, "pageSize");
        }
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let cursor = Cursor { created_micros: 1_700_000_000_123_456, id: "sku_a-1".into() };
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(Some(cursor)));
        assert_eq!(Cursor::decode(""), Ok(None));
        let far_future = URL_SAFE_NO_PAD.encode(format!("{}:x", i64::MAX));
        let with_nul = URL_SAFE_NO_PAD.encode("0:a\0b");
        for bad in ["!!", "bm90LWEtY3Vyc29y", "YWJjOmRlZg", &far_future, &with_nul] {
            let violation = Cursor::decode(bad).expect_err(bad);
            assert_eq!(violation.parameter, "pageToken");
        }
    }

    #[test]
    fn a_page_has_a_token_only_when_more_rows_exist() {
        let cursor_of = |n: &i64| Cursor { created_micros: *n, id: n.to_string() };
        let full = Page::from_rows(vec![1, 2, 3], 2, cursor_of);
        assert_eq!(full.items, vec![1, 2]);
        assert_eq!(Cursor::decode(&full.next_page_token).ok().flatten().map(|c| c.created_micros), Some(2));
        let last = Page::from_rows(vec![1, 2], 2, cursor_of);
        assert!(last.next_page_token.is_empty());
    }

    #[tokio::test]
    async fn rows_created_in_the_same_microsecond_page_by_id() {
        use sea_orm::sea_query::{Alias, Query, SqliteQueryBuilder};
        use sea_orm::{ConnectionTrait, Statement};

        let folder = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/paging.db", folder.path().display());
        let db = crate::Database::connect(&url, crate::PoolConfig::default()).await.expect("connect");
        let conn = db.connection();
        conn.execute_unprepared("CREATE TABLE t (id TEXT PRIMARY KEY, created_time TEXT NOT NULL)")
            .await
            .expect("table");
        // A whole second (no fraction is written) and a later time with a fraction.
        let whole = DateTimeUtc::from_timestamp(1_700_000_000, 0).expect("time");
        let later = DateTimeUtc::from_timestamp(1_700_000_000, 1_000).expect("time");
        let rows = [("c", whole), ("a", whole), ("b", whole), ("a2", later)];
        for (id, time) in rows {
            let insert = Query::insert()
                .into_table(Alias::new("t"))
                .columns([Alias::new("id"), Alias::new("created_time")])
                .values_panic([id.into(), time.into()])
                .to_owned();
            conn.execute(&insert).await.expect("insert");
        }
        let mut seen = Vec::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            let mut select = Query::select();
            select.columns([Alias::new("id"), Alias::new("created_time")]).from(Alias::new("t"));
            if let Some(cursor) = &cursor {
                select.cond_where(cursor.condition(Alias::new("created_time"), Alias::new("id")));
            }
            select
                .order_by(Alias::new("created_time"), sea_orm::Order::Asc)
                .order_by(Alias::new("id"), sea_orm::Order::Asc)
                .limit(1);
            let (sql, values) = select.build(SqliteQueryBuilder);
            let statement = Statement::from_sql_and_values(conn.get_database_backend(), sql, values);
            let Some(row) = conn.query_one_raw(statement).await.expect("select") else { break };
            let id: String = row.try_get("", "id").expect("id");
            let time: DateTimeUtc = row.try_get("", "created_time").expect("time");
            cursor = Some(Cursor::decode(&Cursor::after(time, &id).encode()).expect("token").expect("cursor"));
            seen.push(id);
        }
        assert_eq!(seen, ["a", "b", "c", "a2"]);
    }
}
