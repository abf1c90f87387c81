// Sandwich trees for one function, merged over all of its occurrences in
// a call tree: its callers (paths from it up to the root, inverted) and
// its callees (its subtrees merged). Only outermost occurrences count, so
// recursion is not counted twice.

export function sandwich(root, name) {
  const callers = { name, self: 0, total: 0, children: [] };
  const callees = { name, self: 0, total: 0, children: [] };
  const visit = (n) => {
    if (n.name === name) {
      callers.total += n.total;
      let at = callers;
      for (let a = n.parent; a && a.parent; a = a.parent) at = child(at, a.name, n.total);
      at.self += n.total; // the path ends here: the root's callers
      callees.total += n.total;
      callees.self += n.self;
      for (const c of n.children || []) merge(callees, c);
      return;
    }
    for (const c of n.children || []) visit(c);
  };
  visit(root);
  return { callers, callees };
}

function child(parent, name, v) {
  let c = parent.children.find((x) => x.name === name);
  if (!c) {
    c = { name, self: 0, total: 0, children: [] };
    parent.children.push(c);
  }
  c.total += v;
  return c;
}

function merge(into, n) {
  const c = child(into, n.name, n.total);
  c.self += n.self;
  for (const g of n.children || []) merge(c, g);
}

// sortTree orders children biggest first, as the server does.
export function sortTree(n) {
  n.children.sort((a, b) => b.total - a.total || (a.name < b.name ? -1 : 1));
  n.children.forEach(sortTree);
  return n;
}
