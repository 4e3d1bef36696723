//! What List methods share: the query shape and how a page is read.

use chrono::{DateTime, Utc};
use rapport_kit::error::Problem;
use rapport_kit::filter::{self, SqlValue};
use rapport_kit::paging::{self, Cursor, Order};
use sqlx::PgPool;
use sqlx::postgres::PgRow;

use crate::error::Error;

/// A parsed List request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// The filter as bound SQL, if any.
    pub filter: Option<filter::SqlFilter>,
    /// The sort order.
    pub order: Order,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
    /// Include soft-deleted rows.
    pub show_deleted: bool,
    /// Rows per page.
    pub page_size: u32,
}

impl ListQuery {
    /// `SELECT columns FROM table WHERE …` with every parameter bound in
    /// order; fetches one row more than a page to know if another follows.
    pub(crate) fn sql(&self, columns: &str, table: &str) -> Result<(String, Vec<SqlValue>), Problem> {
        let mut sql = format!("SELECT {columns} FROM {table} WHERE TRUE");
        let mut params = Vec::new();
        if !self.show_deleted {
            sql.push_str(" AND delete_time IS NULL");
        }
        if let Some(filter) = &self.filter {
            sql.push_str(" AND ");
            sql.push_str(&filter.sql);
            params.extend(filter.params.iter().cloned());
        }
        if let Some(cursor) = &self.cursor {
            sql.push_str(" AND ");
            sql.push_str(&self.order.after_sql(params.len() + 1));
            params.push(cursor.value_param(self.order.key.kind)?);
            params.push(SqlValue::Uuid(cursor.id));
        }
        sql.push_str(&format!(" ORDER BY {} LIMIT {}", self.order.sql(), u64::from(self.page_size) + 1));
        Ok((sql, params))
    }
}

/// Reads one page of `table` as `Row`s turned into records, and the token
/// of the next page; `cursor` gives a record's position in the order.
pub(crate) async fn fetch_page<Row, Record>(
    pool: &PgPool,
    query: &ListQuery,
    fingerprint: &str,
    (columns, table): (&str, &str),
    cursor: impl Fn(&Record) -> Cursor,
) -> Result<(Vec<Record>, String), Error>
where
    Row: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    Record: From<Row>,
{
    let (sql, params) = query.sql(columns, table)?;
    let mut statement = sqlx::query_as::<_, Row>(&sql);
    for param in params {
        statement = filter::bind_as(statement, param);
    }
    let mut records: Vec<Record> = statement.fetch_all(pool).await?.into_iter().map(Into::into).collect();
    let page_size = query.page_size as usize;
    let more = records.len() > page_size;
    records.truncate(page_size);
    let next_page_token = match records.last() {
        Some(last) if more => paging::encode_token(fingerprint, cursor(last)),
        _ => String::new(),
    };
    Ok((records, next_page_token))
}

/// A timestamp as a page cursor value (microseconds, as stored).
pub(crate) fn time_value(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
