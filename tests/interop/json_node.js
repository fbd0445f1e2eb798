// json_node.js: compares libstellar's JSON encoder with node's own.
// usage: node json_node.js JSON_DUMP_PROGRAM CASES_FILE
// For every non-empty line L of CASES_FILE, the program must print exactly
// JSON.stringify(JSON.parse(L)). Exit 0 when all match, 1 otherwise.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');

const [prog, casesFile] = process.argv.slice(2);
const cases = fs.readFileSync(casesFile, 'utf8').split('\n').filter((l) => l !== '');
const got = execFileSync(prog, [casesFile], { encoding: 'utf8' }).split('\n');
let bad = 0;
cases.forEach((line, i) => {
  const want = JSON.stringify(JSON.parse(line));
  if (got[i] !== want) {
    bad++;
    console.log(`MISMATCH case ${i + 1}: ${line}\n  node:    ${want}\n  stellar: ${got[i]}`);
  }
});
console.log(`${cases.length - bad} of ${cases.length} cases match node ${process.version}`);
process.exit(bad ? 1 : 0);
