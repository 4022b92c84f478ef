import { DuckDBInstance } from '@duckdb/node-api';
const inst = await DuckDBInstance.create('/tmp/s5/finance.duckdb', { access_mode: 'READ_ONLY' });
const c = await inst.connect();
async function t(label: string, q: string) { const s = performance.now(); await c.run(q); console.log(label, Math.round(performance.now() - s)); }
const cols = ['order_id','line_number','sku','category_id','quantity','unit_price','discount','net_amount'];
await t('counts', `select count(*), ${cols.map(c=>`count(${c}), min(${c}), max(${c})`).join(',')} from order_lines`);
await t('distinct', `select ${cols.map(c=>`count(distinct ${c})`).join(',')} from order_lines`);
await t('approx', `select ${cols.map(c=>`approx_count_distinct(${c})`).join(',')} from order_lines`);
const ocols = ['id','customer_id','ordered_at','status','channel','region','total_amount'];
await t('orders distinct', `select ${ocols.map(c=>`count(distinct ${c})`).join(',')} from orders`);
await t('orders approx', `select ${ocols.map(c=>`approx_count_distinct(${c})`).join(',')} from orders`);
