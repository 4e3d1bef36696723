//! What every List method shares: a request's filter, order, page token
//! and size parsed into a [`ListQuery`] against a resource's allow-lists,
//! and the SQL of one keyset page. Every List of Contacts and Pipeline
//! goes through it:
//!
//! ```text
//! let query = ListQuery::parse(&request, &SHAPE)?;          // api
//! let mut rows: Vec<Row> = listing::fetch(&mut *conn, query.sql(COLUMNS, "table")?).await?;
//! let next_page_token = query.next_page(&mut rows, |row| Cursor { .. });
//! ```

use crate::error::Problem;
use crate::filter::{self, Field, SqlFilter, SqlValue};
use crate::paging::{self, Cursor, Order, SortKey};
use sqlx::postgres::PgRow;

/// The raw List request fields.
#[derive(Debug, Clone, Copy)]
pub struct ListRequest<'a> {
    /// `filter`
    pub filter: &'a str,
    /// `order_by`
    pub order_by: &'a str,
    /// `page_size`
    pub page_size: i32,
    /// `page_token`
    pub page_token: &'a str,
    /// `show_deleted`
    pub show_deleted: bool,
}

/// Page sizes and the default order of a resource's List.
#[derive(Debug, Clone, Copy)]
pub struct ListShape<'a> {
    /// Filterable fields.
    pub filters: &'a [Field],
    /// Sortable fields.
    pub orders: &'a [SortKey],
    /// The order when `order_by` is empty, as `order_by` is written
    /// (e.g. `create_time desc`).
    pub default_order: &'a str,
    /// Page size when unset.
    pub default_page_size: u32,
    /// The largest page.
    pub max_page_size: u32,
    /// Whether rows are soft-deleted (have a `delete_time`): when not,
    /// `show_deleted` is ignored and every row is listed.
    pub soft_deleted: bool,
}

/// A parsed List request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// The filter as bound SQL, if any.
    pub filter: Option<SqlFilter>,
    /// The sort order.
    pub order: Order,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
    /// Include soft-deleted rows (always, for a resource without them).
    pub show_deleted: bool,
    /// Rows per page.
    pub page_size: u32,
    /// The fingerprint the page tokens of this query carry.
    pub fingerprint: String,
}

impl ListQuery {
    /// Parses `request` against `shape` (INVALID_ARGUMENT with reason
    /// INVALID_FILTER, INVALID_ORDER_BY or INVALID_PAGE_TOKEN on bad input).
    pub fn parse(request: &ListRequest<'_>, shape: &ListShape<'_>) -> Result<ListQuery, Problem> {
        let filter = filter::parse(request.filter, shape.filters, 1).map_err(|err| {
            Problem::invalid_field("INVALID_FILTER", "filter", err.to_string())
                .meta("position", err.position.to_string())
        })?;
        let order_by =
            if request.order_by.trim().is_empty() { shape.default_order } else { request.order_by };
        let order = Order::parse(order_by, shape.orders, shape.default_order)?;
        let order_text = order.canonical();
        let fingerprint = if shape.soft_deleted {
            let deleted = if request.show_deleted { "deleted" } else { "live" };
            paging::fingerprint(&[request.filter.trim(), &order_text, deleted])
        } else {
            paging::fingerprint(&[request.filter.trim(), &order_text])
        };
        let cursor = paging::decode_token(request.page_token, &fingerprint)?;
        let page_size = paging::page_size(request.page_size, shape.default_page_size, shape.max_page_size)?;
        Ok(ListQuery {
            filter,
            order,
            cursor,
            show_deleted: request.show_deleted || !shape.soft_deleted,
            page_size,
            fingerprint,
        })
    }

    /// Narrows the query by one more condition, `condition(n)` rendered
    /// with its placeholders from `$n` (after the filter's), e.g. the
    /// caller's [`ReadScope`](crate::auth::ReadScope).
    pub fn and(&mut self, condition: impl FnOnce(usize) -> SqlFilter) {
        let first = self.filter.as_ref().map_or(0, |filter| filter.params.len()) + 1;
        let added = condition(first);
        self.filter = Some(match self.filter.take() {
            Some(mut filter) => {
                filter.sql = format!("({}) AND ({})", filter.sql, added.sql);
                filter.params.extend(added.params);
                filter
            }
            None => added,
        });
    }

    /// `SELECT columns FROM table WHERE …` with every parameter bound in
    /// order; fetches one row more than a page to know if another follows.
    pub fn sql(&self, columns: &str, table: &str) -> Result<(String, Vec<SqlValue>), Problem> {
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

    /// The next page's token when `rows` (fetched by [`ListQuery::sql`])
    /// hold more than a page: truncates them to the page.
    pub fn next_page<T>(&self, rows: &mut Vec<T>, cursor: impl Fn(&T) -> Cursor) -> String {
        let more = rows.len() > self.page_size as usize;
        rows.truncate(self.page_size as usize);
        match rows.last() {
            Some(last) if more => paging::encode_token(&self.fingerprint, cursor(last)),
            _ => String::new(),
        }
    }
}

/// Runs the `(sql, params)` of [`ListQuery::sql`], binding every
/// parameter in order; hand the rows to [`ListQuery::next_page`].
pub async fn fetch<'c, Row>(
    executor: impl sqlx::PgExecutor<'c>,
    (sql, params): (String, Vec<SqlValue>),
) -> Result<Vec<Row>, sqlx::Error>
where
    Row: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    let mut statement = sqlx::query_as::<_, Row>(&sql);
    for param in params {
        statement = filter::bind_as(statement, param);
    }
    statement.fetch_all(executor).await
}

/// A timestamp as a page cursor value (microseconds, as stored).
pub fn time_value(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
