// Preloaded into kinesis-mock (`node --require loopback.js main.js`) by scripts/backends.
// kinesis-mock binds its listeners to 0.0.0.0 with no setting to change it; the test backends
// must listen on loopback only, so every wildcard (or missing) host given to net.Server#listen
// becomes 127.0.0.1. http/https/tls servers all listen through net.Server.
'use strict';
const net = require('net');

const WILDCARD = new Set([undefined, null, '', '0.0.0.0', '::', '::0']);
const original = net.Server.prototype.listen;

net.Server.prototype.listen = function listen(...args) {
  const first = args[0];
  if (first !== null && typeof first === 'object' && !Array.isArray(first)) {
    // listen(options[, cb]); a handle or a unix path is left alone.
    if ('port' in first && WILDCARD.has(first.host)) args[0] = { ...first, host: '127.0.0.1' };
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, cb])
    if (typeof args[1] === 'string' || args[1] === null || args[1] === undefined) {
      if (WILDCARD.has(args[1])) args[1] = '127.0.0.1';
    } else {
      args.splice(1, 0, '127.0.0.1');
    }
  } else if (first === undefined || typeof first === 'function') {
    // listen([cb]): a random port on every interface.
    args.unshift({ port: 0, host: '127.0.0.1' });
  }
  return original.apply(this, args);
};
