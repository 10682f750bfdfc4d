-- warmcache live mode: the /products section (the catalog).
--
-- Query parameter: product_limit (INT64), an upper bound on the catalog size.
-- {{products}} is replaced by the configured table.
--
-- Columns: product_id, sku, name, category (STRING), price (NUMERIC),
-- currency (STRING, NULL means the configured currency), stock_quantity
-- (INT64), updated_at (TIMESTAMP). Only currency may be NULL.
SELECT
  product_id,
  sku,
  name,
  category,
  price,
  currency,
  stock_quantity,
  updated_at
FROM {{products}}
ORDER BY product_id
LIMIT @product_limit
