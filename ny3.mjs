import { parseDocument, LineCounter, Lexer } from 'yaml';
const n = Number(process.argv[2]);
const t = process.argv[3]==='seq' ? '- '.repeat(n/2)+'x' : process.argv[3]==='qm' ? '? '.repeat(n/2)+'x' : 'a: &a [1]\nb: *a\n';
if (process.argv[4]) { const seen = new Set(); for (const tok of new Lexer().lex(t)) seen.add(JSON.stringify(tok)); console.log([...seen].slice(0,20)); }
const t0=Date.now();
try { const d = parseDocument(t, {lineCounter: new LineCounter(), uniqueKeys:true, prettyErrors:false}); console.log('errors', d.errors.length, d.errors[0]?.message.slice(0,80)); d.toJS(); } catch(e) { console.log('throw', e.message.slice(0,100)); }
console.log(n, 'rss MB', (process.memoryUsage().rss/1e6)|0, 'ms', Date.now()-t0);
