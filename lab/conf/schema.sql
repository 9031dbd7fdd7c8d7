-- The shop's tables, created once in the lab's own PostgreSQL cluster.
CREATE TABLE IF NOT EXISTS products (id int PRIMARY KEY, name text NOT NULL, price numeric(8,2) NOT NULL);
CREATE TABLE IF NOT EXISTS stock (item_id int PRIMARY KEY REFERENCES products(id), qty int NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
  id bigserial PRIMARY KEY, customer text NOT NULL, item int NOT NULL, amount numeric(10,2) NOT NULL,
  shipping numeric(8,2) NOT NULL, created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO products SELECT i, 'product ' || i, 5 + (i * 7) % 90 FROM generate_series(1, 50) AS i
  ON CONFLICT DO NOTHING;
INSERT INTO stock SELECT i, 1000 FROM generate_series(1, 50) AS i ON CONFLICT DO NOTHING;
