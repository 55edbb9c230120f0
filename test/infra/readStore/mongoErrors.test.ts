import test from 'ava';
import { MongoNetworkError, MongoServerError } from 'mongodb';
import { isStoreError } from '../../../domain/ports.ts';
import { translateMongoError } from '../../../infra/readStore/mongo/connection.ts';

const address = 'mongodb://db:27017';

test('a bare socket error the driver lets through (EPIPE when the server was killed) is UNAVAILABLE', (t) => {
  const epipe = Object.assign(new Error('This socket has been ended by the other party'), { code: 'EPIPE' });
  const translated = translateMongoError(epipe, address);
  t.true(isStoreError(translated, 'UNAVAILABLE'));
  t.regex((translated as Error).message, /^MongoDB unavailable at mongodb:\/\/db:27017/);
});

test('network errors are UNAVAILABLE; other server errors pass unchanged', (t) => {
  t.true(isStoreError(translateMongoError(new MongoNetworkError('connection reset'), address), 'UNAVAILABLE'));
  const duplicate = new MongoServerError({ message: 'E11000 duplicate key', code: 11000 });
  t.is(translateMongoError(duplicate, address), duplicate);
  const bug = new TypeError('not a store problem');
  t.is(translateMongoError(bug, address), bug);
});
