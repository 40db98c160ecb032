'use strict';
// Nimbus syntax checker for Node.js sources: reads {"path": "source", ...}
// as JSON on stdin, parses every .js, .cjs and .mjs file in path order
// without running any, and prints {"file", "line", "message"} for the first
// syntax error, or {}.
//
// CommonJS is compiled with vm.compileFunction (the module wrapper's
// parameters); ES modules with vm.SourceTextModule (run node with
// --experimental-vm-modules), which parses without linking or evaluating.
// A .js file is an ES module if the nearest package.json among the files
// says "type": "module"; with no "type", it is CommonJS unless it only
// parses as a module, as Node's own detection does. Node decorates a
// module's SyntaxError with its location only through an internal helper
// (run node with --expose-internals); without it the line is 0.
const fs = require('fs');
const vm = require('vm');
const posix = require('path').posix;

let decorate = null;
try {
  decorate = require('internal/util').decorateErrorStack;
} catch {}

const files = JSON.parse(fs.readFileSync(0, 'utf8'));

const cjsParams = ['exports', 'require', 'module', '__filename', '__dirname'];
const moduleHint =
  /Cannot use import statement outside a module|Unexpected token 'export'|Cannot use 'import\.meta' outside a module|await is only valid in async functions and the top level bodies of modules/;

function packageType(name) {
  let dir = posix.dirname(name);
  for (;;) {
    const p = dir === '.' ? 'package.json' : dir + '/package.json';
    if (Object.prototype.hasOwnProperty.call(files, p)) {
      try {
        const t = JSON.parse(files[p]).type;
        return t === 'module' || t === 'commonjs' ? t : '';
      } catch {
        return '';
      }
    }
    if (dir === '.' || dir === '/') return '';
    dir = posix.dirname(dir);
  }
}

function parseCJS(name, src) {
  try {
    vm.compileFunction(src, cjsParams, { filename: name });
    return null;
  } catch (e) {
    return e;
  }
}

function parseESM(name, src) {
  try {
    new vm.SourceTextModule(src, { identifier: name });
    return null;
  } catch (e) {
    if (decorate) {
      try {
        decorate(e);
      } catch {}
    }
    return e;
  }
}

function report(name, e) {
  const stack = String((e && e.stack) || '');
  let line = 0;
  if (stack.startsWith(name + ':')) {
    const m = /^(\d+)/.exec(stack.slice(name.length + 1));
    if (m) line = Number(m[1]);
  }
  return { file: name, line, message: String((e && e.message) || e) };
}

function check(name, src) {
  if (src.charCodeAt(0) === 0xfeff) src = src.slice(1);
  if (src.startsWith('#!')) src = '//' + src.slice(2); // keep line numbers
  const type = name.endsWith('.mjs') ? 'module' : name.endsWith('.cjs') ? 'commonjs' : packageType(name);
  if (type === 'module') return parseESM(name, src);
  const err = parseCJS(name, src);
  if (err === null || type === 'commonjs' || !moduleHint.test(String(err.message))) return err;
  return parseESM(name, src);
}

function main() {
  for (const name of Object.keys(files).sort()) {
    if (!/\.(js|cjs|mjs)$/.test(name)) continue;
    const err = check(name, String(files[name]));
    if (err) return report(name, err);
  }
  return {};
}

process.stdout.write(JSON.stringify(main()) + '\n');
