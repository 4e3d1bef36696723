//! How the order, invoice and payment lists read a page: the parsed query
//! and a keyset page of rows.

use chrono::{DateTime, Utc};
use rapport_kit::error::Problem;
use rapport_kit::filter::{self, Field, SqlValue};
use rapport_kit::paging::{self, Cursor, Order, SortKey};
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
    /// Rows per page.
    pub page_size: u32,
    /// Binds the page tokens to this query.
    pub fingerprint: String,
}

impl ListQuery {
    /// Parses the List request fields against a resource's allow-lists
    /// (`default_order` as `order_by` is written, e.g. `create_time desc`).
    pub fn parse(
        (filter_text, order_by, page_size, page_token): (&str, &str, i32, &str),
        filters: &[Field],
        orders: &[SortKey],
        default_order: &str,
    ) -> Result<ListQuery, Error> {
        let filter = filter::parse(filter_text, filters, 1).map_err(|err| {
            Problem::invalid_field("INVALID_FILTER", "filter", err.to_string())
                .meta("position", err.position.to_string())
        })?;
        let order_by = if order_by.trim().is_empty() { default_order } else { order_by };
        let order = Order::parse(order_by, orders, default_order)?;
        let fingerprint = paging::fingerprint(&[filter_text.trim(), &order.canonical()]);
        let cursor = paging::decode_token(page_token, &fingerprint)?;
        let page_size = paging::page_size(page_size, 50, 500)?;
        Ok(ListQuery { filter, order, cursor, page_size, fingerprint })
    }

    /// `SELECT columns FROM table WHERE …` with every parameter bound in
    /// order; fetches one row more than a page to know if another follows.
    fn sql(&self, columns: &str, table: &str) -> Result<(String, Vec<SqlValue>), Problem> {
        let mut sql = format!("SELECT {columns} FROM {table} WHERE TRUE");
        let mut params = Vec::new();
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

/// Reads one page of `table` as `Row`s, and the token of the next page;
/// `cursor` gives a row's position in the order.
pub(crate) async fn fetch_page<Row>(
    pool: &PgPool,
    query: &ListQuery,
    (columns, table): (&str, &str),
    cursor: impl Fn(&Row) -> Cursor,
) -> Result<(Vec<Row>, String), Error>
where
    Row: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    let (sql, params) = query.sql(columns, table)?;
    let mut statement = sqlx::query_as::<_, Row>(&sql);
    for param in params {
        statement = filter::bind_as(statement, param);
    }
    let mut rows = statement.fetch_all(pool).await?;
    let page_size = query.page_size as usize;
    let more = rows.len() > page_size;
    rows.truncate(page_size);
    let next_page_token = match rows.last() {
        Some(last) if more => paging::encode_token(&query.fingerprint, cursor(last)),
        _ => String::new(),
    };
    Ok((rows, next_page_token))
}

/// A timestamp as a page cursor value (microseconds, as stored).
pub(crate) fn time_value(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
