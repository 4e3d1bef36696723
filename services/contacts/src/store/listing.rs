//! What List methods share: the query shape and how a page is read.

use rapport_kit::error::Problem;
use rapport_kit::filter::{self, SqlValue};
use rapport_kit::paging::{self, Cursor, Order};

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

/// The token for the page after `last`, if there is one.
pub(crate) fn next_token(fingerprint: &str, more: bool, last: Option<Cursor>) -> String {
    match (more, last) {
        (true, Some(cursor)) => paging::encode_token(fingerprint, cursor),
        _ => String::new(),
    }
}
