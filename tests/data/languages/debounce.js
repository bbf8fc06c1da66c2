'use strict';

/**
 * Call `fn` once the calls stop for `waitMs` milliseconds.
 * @param {Function} fn
 * @param {number} waitMs
 */
function debounce(fn, waitMs) {
  let timer = null;
  const wrapped = function (...args) {
    if (timer !== null) {
      clearTimeout(timer);
    }
    timer = setTimeout(() => {
      timer = null;
      fn.apply(this, args);
    }, waitMs);
  };
  wrapped.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return wrapped;
}

function groupBy(items, keyOf) {
  const groups = new Map();
  for (const item of items) {
    const key = keyOf(item);
    if (!groups.has(key)) {
      groups.set(key, []);
    }
    groups.get(key).push(item);
  }
  return groups;
}

module.exports = { debounce, groupBy };
