-- The lab database, shaped like the runbooks' (payment_sandbox): cards and their uniqueness
-- pool (runbook 000), migrations, projects/scenes (runbook 001 4.x), marketplace orders with
-- Stripe PaymentIntent ids and the payments kill switch, products with a full-text search index
-- (runbook 004).
-- Re-runnable: drops and recreates everything it owns.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS marketplace CASCADE;
DROP TABLE IF EXISTS generated_cards, card_uniqueness_pool, bloom_filter_cards, schema_migrations,
  scenes, projects CASCADE;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;

CREATE TABLE schema_migrations (
  version text PRIMARY KEY,
  name text NOT NULL,
  executed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO schema_migrations (version, name, executed_at) VALUES
  ('20260101000000', 'create_generated_cards', now() - interval '300 days'),
  ('20260315000000', 'create_card_uniqueness_pool', now() - interval '250 days'),
  ('20260601000000', 'create_marketplace_orders', now() - interval '170 days'),
  ('20261101000000', 'add_orders_currency', now() - interval '21 days');

CREATE TABLE generated_cards (
  id bigserial PRIMARY KEY,
  card_number text NOT NULL,
  expiry_date text NOT NULL,
  cvv text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (card_number, expiry_date, cvv)
);
CREATE TABLE card_uniqueness_pool (
  card_hash text PRIMARY KEY,
  reserved_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE bloom_filter_cards (id int PRIMARY KEY, bits bytea NOT NULL, updated_at timestamptz DEFAULT now());

CREATE TABLE projects (id bigserial PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());
CREATE TABLE scenes (
  id bigserial PRIMARY KEY,
  project_id bigint NOT NULL REFERENCES projects (id),
  body text,
  created_at timestamptz DEFAULT now()
);
CREATE INDEX idx_scenes_project_id ON scenes (project_id);

CREATE SCHEMA marketplace;
CREATE TABLE marketplace."Order" (
  id text PRIMARY KEY,
  "stripePaymentIntentId" text,
  amount integer NOT NULL,          -- minor units
  currency text NOT NULL DEFAULT 'eur',
  status text NOT NULL,
  "createdAt" timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_payment_intent ON marketplace."Order" ("stripePaymentIntentId");
CREATE TABLE marketplace.configuration (key text PRIMARY KEY, payments_enabled boolean NOT NULL);
INSERT INTO marketplace.configuration VALUES ('PAYMENTS_ENABLED', true);

INSERT INTO generated_cards (card_number, expiry_date, cvv, created_at)
SELECT lpad((4000000000000000 + g)::text, 16, '0'), lpad((1 + g % 12)::text, 2, '0') || '/' || (27 + g % 5),
       lpad((g % 1000)::text, 3, '0'), now() - (g || ' minutes')::interval
FROM generate_series(1, 50000) g;
INSERT INTO card_uniqueness_pool SELECT md5(g::text), now() - (g || ' seconds')::interval FROM generate_series(1, 20000) g;
INSERT INTO bloom_filter_cards VALUES (1, decode(repeat('00', 1024), 'hex'));
INSERT INTO projects (name) SELECT 'project ' || g FROM generate_series(1, 200) g;
INSERT INTO scenes (project_id, body) SELECT 1 + g % 200, repeat('x', 100) FROM generate_series(1, 30000) g;
INSERT INTO marketplace."Order" (id, "stripePaymentIntentId", amount, currency, status, "createdAt")
SELECT 'ord_' || g, 'pi_lab_' || lpad(g::text, 6, '0'), 1000 + g, 'eur',
       CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'paid' END, now() - (g || ' minutes')::interval
FROM generate_series(1, 2000) g;

-- Full-text search (runbook 004, Story 3.5): products searched through a to_tsvector GIN index,
-- as the runbook's own query does (playbooks/runbooks/search.yml). 8000 rows: below the
-- sequential-scan hint's 10000, so slow_queries does not flag this table; 80 mention "pasta".
CREATE TABLE marketplace."Product" (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  "createdAt" timestamptz NOT NULL DEFAULT now()
);
INSERT INTO marketplace."Product" (name, description)
SELECT CASE WHEN g % 100 = 0 THEN 'pasta fresca ' || g ELSE 'produto ' || g END,
       (ARRAY['azeite extra virgem', 'queijo curado', 'vinho tinto', 'pão de fermentação lenta',
              'café moído'])[1 + g % 5] || ' lote ' || g
FROM generate_series(1, 8000) g;
CREATE INDEX idx_products_search_gin ON marketplace."Product"
  USING gin (to_tsvector('portuguese', name || ' ' || description));
ANALYZE marketplace."Product";

-- Bloat for the maintenance windows to find. Autovacuum is off on these two tables so that
-- the lab keeps this state until a playbook deals with it (a real server's autovacuum would
-- race the demo).
ALTER TABLE generated_cards SET (autovacuum_enabled = false);
ALTER TABLE card_uniqueness_pool SET (autovacuum_enabled = false);
-- A backend reports its row counters at most once a second; flush them before ANALYZE so
-- that the statistics do not count the inserted rows twice.
SELECT pg_stat_force_next_flush();
SELECT pg_sleep(0.1);
ANALYZE;
DELETE FROM generated_cards WHERE id % 10 < 4;
UPDATE card_uniqueness_pool SET reserved_at = now() WHERE card_hash < '8';
SELECT pg_stat_force_next_flush();
