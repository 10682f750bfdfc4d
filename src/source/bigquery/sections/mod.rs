//! Query results to snapshot sections.
//!
//! The dashboard and historical queries return one row per item with a
//! `kind` column (see `queries/*.sql`); only periods that had sales come
//! back, so the series are laid out here, with zeros where nothing sold, and
//! a row outside its series is an error. Amounts are rounded to cents;
//! averages and shares are derived here, like the mock source does.
//!
//! The dashboard, with its KPIs, series and rankings, is in `dashboard`.

mod dashboard;

use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, Month, OffsetDateTime};

use super::cells::ResultTable;
use crate::data::{
    DailyAggregate, Historical, MonthlyAggregate, Product, Products, StockStatus, cents,
};
use crate::source::SourceError;

pub(crate) use dashboard::dashboard;

/// The historical section: `days` days before `today`, and the `months`
/// calendar months ending with today's.
pub(crate) fn historical(
    table: &ResultTable,
    today: Date,
    days: u16,
    months: u16,
) -> Result<Historical, SourceError> {
    let first_day = today - Duration::days(i64::from(days));
    let mut daily: Vec<DailyAggregate> = (0..i64::from(days))
        .map(|i| empty_day(first_day + Duration::days(i)))
        .collect();
    let month_starts = month_starts(today, months);
    let mut monthly: Vec<MonthlyAggregate> = month_starts
        .iter()
        .map(|start| MonthlyAggregate {
            month: format!("{:04}-{:02}", start.year(), u8::from(start.month())),
            revenue: 0.0,
            transactions: 0,
            customers: 0,
        })
        .collect();

    for row in table.rows() {
        let kind = row.string("kind")?;
        let period = row.date("period")?;
        let (revenue, transactions, customers) = (
            cents(row.number("revenue")?),
            row.count("transactions")?,
            row.count("customers")?,
        );
        match kind.as_str() {
            "day" => {
                let slot = usize::try_from((period - first_day).whole_days())
                    .ok()
                    .and_then(|i| daily.get_mut(i))
                    .ok_or_else(|| {
                        row.error(
                            "period",
                            format!("{period} is outside the {days} days before {today}"),
                        )
                    })?;
                (slot.revenue, slot.transactions, slot.customers) =
                    (revenue, transactions, customers);
            }
            "month" => {
                let slot = month_starts
                    .iter()
                    .position(|start| *start == period)
                    .and_then(|i| monthly.get_mut(i))
                    .ok_or_else(|| {
                        row.error(
                            "period",
                            format!(
                                "{period} is not the first day of one of the {months} months ending {today}"
                            ),
                        )
                    })?;
                (slot.revenue, slot.transactions, slot.customers) =
                    (revenue, transactions, customers);
            }
            other => {
                return Err(row.error(
                    "kind",
                    format!("unknown kind {other:?} (expected day or month)"),
                ));
            }
        }
    }
    Ok(Historical { daily, monthly })
}

/// The products section; a NULL currency means `default_currency`.
pub(crate) fn products(
    table: &ResultTable,
    default_currency: &str,
) -> Result<Products, SourceError> {
    let items = table
        .rows()
        .map(|row| {
            let stock_quantity = row.count("stock_quantity")?;
            let updated_at = row.timestamp("updated_at")?;
            Ok(Product {
                id: row.string("product_id")?,
                sku: row.string("sku")?,
                name: row.string("name")?,
                category: row.string("category")?,
                price: row.number("price")?,
                currency: row
                    .opt_string("currency")?
                    .unwrap_or_else(|| default_currency.to_owned()),
                stock_status: StockStatus::from_quantity(stock_quantity),
                stock_quantity,
                updated_at: rfc3339(updated_at),
            })
        })
        .collect::<Result<Vec<_>, SourceError>>()?;
    Ok(Products {
        count: items.len(),
        items,
    })
}

fn empty_day(date: Date) -> DailyAggregate {
    DailyAggregate {
        date: date.to_string(),
        revenue: 0.0,
        transactions: 0,
        customers: 0,
    }
}

/// First days of the `count` calendar months ending with `today`'s, oldest first.
fn month_starts(today: Date, count: u16) -> Vec<Date> {
    let (mut year, mut month) = (today.year(), today.month());
    let mut starts = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        if let Ok(start) = Date::from_calendar_date(year, month, 1) {
            starts.push(start);
        }
        if month == Month::January {
            year -= 1;
        }
        month = month.previous();
    }
    starts.reverse();
    starts
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::bigquery::cells::table;
    use serde_json::json;
    use time::macros::date;

    #[test]
    fn history_covers_365_days_and_24_months_across_a_year_boundary() {
        let columns = [
            ("kind", "STRING"),
            ("period", "DATE"),
            ("revenue", "NUMERIC"),
            ("transactions", "INTEGER"),
            ("customers", "INTEGER"),
        ];
        let rows = vec![
            vec![
                json!("month"),
                json!("2024-04-01"),
                json!("3"),
                json!("1"),
                json!("1"),
            ],
            vec![
                json!("day"),
                json!("2025-03-01"),
                json!("2.5"),
                json!("1"),
                json!("1"),
            ],
            vec![
                json!("day"),
                json!("2026-02-28"),
                json!("1.25"),
                json!("1"),
                json!("1"),
            ],
        ];
        let h = historical(
            &table("historical", &columns, rows),
            date!(2026 - 03 - 01),
            365,
            24,
        )
        .expect("valid");
        assert_eq!(h.daily.len(), 365);
        assert_eq!(
            (h.daily[0].date.as_str(), h.daily[0].revenue),
            ("2025-03-01", 2.5)
        );
        assert_eq!(h.daily[364].date, "2026-02-28");
        assert_eq!(h.monthly.len(), 24);
        assert_eq!(
            (h.monthly[0].month.as_str(), h.monthly[0].revenue),
            ("2024-04", 3.0)
        );
        assert_eq!(h.monthly[23].month, "2026-03");

        let today_row = vec![vec![
            json!("day"),
            json!("2026-03-01"),
            json!("1"),
            json!("1"),
            json!("1"),
        ]];
        let err = historical(
            &table("historical", &columns, today_row),
            date!(2026 - 03 - 01),
            365,
            24,
        )
        .expect_err("today");
        assert!(err.to_string().contains("outside the 365 days"), "{err}");
    }
}
