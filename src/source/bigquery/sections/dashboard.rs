//! The dashboard section from its query's rows: the three KPIs (today, 7d,
//! 30d), the 24 hourly and 30 daily points laid out with zeros where nothing
//! sold, the top products and the revenue by category, ranked here (a UNION
//! ALL gives no order) with each category's share of the 30 days.

use std::cmp::Ordering;

use time::{Date, Duration};

use super::empty_day;
use crate::data::{
    CategoryRevenue, DailyAggregate, Dashboard, HourlyPoint, Kpi, Kpis, TopProduct, cents,
};
use crate::source::SourceError;
use crate::source::bigquery::cells::ResultTable;

/// Days in the 30-day series of the dashboard (today included).
const DASHBOARD_DAYS: i64 = 30;

/// The dashboard section for `today` (UTC).
pub(crate) fn dashboard(
    table: &ResultTable,
    today: Date,
    currency: &str,
) -> Result<Dashboard, SourceError> {
    let first_day = today - Duration::days(DASHBOARD_DAYS - 1);
    let mut kpis: [Option<Kpi>; 3] = [None; 3];
    let mut hourly: Vec<HourlyPoint> = (0..24)
        .map(|hour| HourlyPoint {
            hour,
            revenue: 0.0,
            transactions: 0,
        })
        .collect();
    let mut daily: Vec<DailyAggregate> = (0..DASHBOARD_DAYS)
        .map(|i| empty_day(first_day + Duration::days(i)))
        .collect();
    let mut top_products = Vec::new();
    let mut categories = Vec::new();

    for row in table.rows() {
        match row.string("kind")?.as_str() {
            "kpi" => {
                let key = row.string("key")?;
                let slot = match key.as_str() {
                    "today" => 0,
                    "7d" => 1,
                    "30d" => 2,
                    other => {
                        return Err(row.error(
                            "key",
                            format!("unknown KPI {other:?} (expected today, 7d or 30d)"),
                        ));
                    }
                };
                if kpis[slot].is_some() {
                    return Err(row.error("key", format!("a second {key:?} KPI row")));
                }
                kpis[slot] = Some(Kpi::new(
                    row.number("revenue")?,
                    row.count("transactions")?,
                    row.count("customers")?,
                ));
            }
            "hour" => {
                let hour = row.count("hour")?;
                let point = usize::try_from(hour)
                    .ok()
                    .and_then(|h| hourly.get_mut(h))
                    .ok_or_else(|| {
                        row.error("hour", format!("{hour} is not an hour of the day"))
                    })?;
                point.revenue = cents(row.number("revenue")?);
                point.transactions = row.count("transactions")?;
            }
            "day" => {
                let day = row.date("day")?;
                let slot = usize::try_from((day - first_day).whole_days())
                    .ok()
                    .and_then(|i| daily.get_mut(i))
                    .ok_or_else(|| {
                        row.error(
                            "day",
                            format!("{day} is outside the 30 days ending {today}"),
                        )
                    })?;
                slot.revenue = cents(row.number("revenue")?);
                slot.transactions = row.count("transactions")?;
                slot.customers = row.count("customers")?;
            }
            "top" => top_products.push(TopProduct {
                product_id: row.string("key")?,
                name: row.string("name")?,
                category: row.string("category")?,
                units_sold: row.count("units")?,
                revenue: cents(row.number("revenue")?),
            }),
            "category" => categories.push(CategoryRevenue {
                category: row.string("category")?,
                revenue: cents(row.number("revenue")?),
                transactions: row.count("transactions")?,
                share: 0.0,
            }),
            other => {
                return Err(row.error(
                    "kind",
                    format!("unknown kind {other:?} (expected kpi, hour, day, top or category)"),
                ));
            }
        }
    }

    let [Some(today_kpi), Some(last_7_days), Some(last_30_days)] = kpis else {
        let missing: Vec<&str> = ["today", "7d", "30d"]
            .iter()
            .zip(&kpis)
            .filter(|(_, kpi)| kpi.is_none())
            .map(|(key, _)| *key)
            .collect();
        return Err(table.error(format!(
            "no `kpi` row for {} (the query must return today, 7d and 30d)",
            missing.join(", ")
        )));
    };
    // UNION ALL gives no order: best first, ties by id, as the mock does.
    top_products.sort_by(|a, b| {
        by_revenue(b.revenue, a.revenue).then_with(|| a.product_id.cmp(&b.product_id))
    });
    categories
        .sort_by(|a, b| by_revenue(b.revenue, a.revenue).then_with(|| a.category.cmp(&b.category)));
    for category in &mut categories {
        category.share = if last_30_days.revenue > 0.0 {
            category.revenue / last_30_days.revenue
        } else {
            0.0
        };
    }
    Ok(Dashboard {
        currency: currency.to_owned(),
        kpis: Kpis {
            today: today_kpi,
            last_7_days,
            last_30_days,
        },
        hourly_revenue: hourly,
        daily_revenue_30_days: daily,
        top_products,
        revenue_by_category: categories,
    })
}

fn by_revenue(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::bigquery::cells::table;
    use serde_json::{Value, json};
    use time::macros::date;

    const DASHBOARD_COLUMNS: [(&str, &str); 10] = [
        ("kind", "STRING"),
        ("key", "STRING"),
        ("day", "DATE"),
        ("hour", "INTEGER"),
        ("name", "STRING"),
        ("category", "STRING"),
        ("revenue", "NUMERIC"),
        ("transactions", "INTEGER"),
        ("customers", "INTEGER"),
        ("units", "INTEGER"),
    ];

    fn kpi(key: &str, revenue: &str, tx: &str) -> Vec<Value> {
        let n = Value::Null;
        vec![
            json!("kpi"),
            json!(key),
            n.clone(),
            n.clone(),
            n.clone(),
            n,
            json!(revenue),
            json!(tx),
            json!("1"),
            json!("1"),
        ]
    }

    #[test]
    fn the_dashboard_fills_gaps_and_orders_what_unions_leave_unordered() {
        let n = Value::Null;
        let rows = vec![
            vec![
                json!("category"),
                n.clone(),
                n.clone(),
                n.clone(),
                n.clone(),
                json!("Books"),
                json!("5.000000000"),
                json!("1"),
                json!("1"),
                json!("1"),
            ],
            vec![
                json!("top"),
                json!("p2"),
                n.clone(),
                n.clone(),
                json!("Atlas"),
                json!("Books"),
                json!("5.000000000"),
                json!("1"),
                n.clone(),
                json!("1"),
            ],
            vec![
                json!("top"),
                json!("p1"),
                n.clone(),
                n.clone(),
                json!("Kettle"),
                json!("Home"),
                json!("15.004"),
                json!("1"),
                n.clone(),
                json!("2"),
            ],
            vec![
                json!("category"),
                n.clone(),
                n.clone(),
                n.clone(),
                n.clone(),
                json!("Home"),
                json!("15.004"),
                json!("1"),
                json!("1"),
                json!("2"),
            ],
            kpi("30d", "20.004000000", "2"),
            kpi("today", "15.004", "1"),
            kpi("7d", "20.004", "2"),
            vec![
                json!("hour"),
                n.clone(),
                n.clone(),
                json!("13"),
                n.clone(),
                n.clone(),
                json!("15.004"),
                json!("1"),
                json!("1"),
                json!("2"),
            ],
            vec![
                json!("day"),
                n.clone(),
                json!("2026-02-01"),
                n.clone(),
                n.clone(),
                n.clone(),
                json!("5"),
                json!("1"),
                json!("1"),
                json!("1"),
            ],
            vec![
                json!("day"),
                n.clone(),
                json!("2026-03-02"),
                n.clone(),
                n.clone(),
                n,
                json!("15.004"),
                json!("1"),
                json!("1"),
                json!("2"),
            ],
        ];
        let d = dashboard(
            &table("dashboard", &DASHBOARD_COLUMNS, rows),
            date!(2026 - 03 - 02),
            "EUR",
        )
        .expect("valid");
        assert_eq!(d.currency, "EUR");
        assert_eq!(d.kpis.today.revenue, 15.0);
        assert_eq!(d.kpis.last_30_days.average_order_value, 10.0);
        assert_eq!(d.hourly_revenue.len(), 24);
        assert_eq!(d.hourly_revenue[13].transactions, 1);
        assert_eq!(d.daily_revenue_30_days.len(), 30);
        assert_eq!(d.daily_revenue_30_days[0].date, "2026-02-01");
        assert_eq!(d.daily_revenue_30_days[0].revenue, 5.0);
        assert_eq!(d.daily_revenue_30_days[29].date, "2026-03-02");
        assert_eq!(d.daily_revenue_30_days[15].transactions, 0);
        let top: Vec<&str> = d
            .top_products
            .iter()
            .map(|p| p.product_id.as_str())
            .collect();
        assert_eq!(top, ["p1", "p2"]);
        assert_eq!(d.revenue_by_category[0].category, "Home");
        assert!((d.revenue_by_category[0].share - 0.75).abs() < 1e-9);
    }

    #[test]
    fn missing_kpis_and_rows_outside_the_series_are_errors() {
        let only_today = table(
            "dashboard",
            &DASHBOARD_COLUMNS,
            vec![kpi("today", "1", "1")],
        );
        let err = dashboard(&only_today, date!(2026 - 03 - 02), "USD").expect_err("incomplete");
        assert_eq!(
            err.to_string(),
            "dashboard: no `kpi` row for 7d, 30d (the query must return today, 7d and 30d)"
        );

        let n = Value::Null;
        let early = vec![
            json!("day"),
            n.clone(),
            json!("2026-01-31"),
            n.clone(),
            n.clone(),
            n,
            json!("1"),
            json!("1"),
            json!("1"),
            json!("1"),
        ];
        let err = dashboard(
            &table("dashboard", &DASHBOARD_COLUMNS, vec![early]),
            date!(2026 - 03 - 02),
            "USD",
        )
        .expect_err("outside");
        assert!(
            matches!(&err, SourceError::BadRow { row: 0, column, .. } if column == "day"),
            "{err}"
        );
    }
}
