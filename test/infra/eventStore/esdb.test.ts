import { randomBytes } from 'node:crypto';
import test from 'ava';
import { createEsdbEventStore } from '../../../infra/eventStore/esdb/index.ts';
import { eventStoreContract } from '../../contracts/eventStore.ts';

// EventStoreDB cannot be had on the machines CI runs on: the contract runs wherever a server is given.
const url = process.env.STRATA_EVENTSTORE_URL;

if (url === undefined || url === '') {
  console.warn('NOTICE: EventStoreDB contract suite skipped: STRATA_EVENTSTORE_URL is not set');
  test.skip('esdb: contract suite (set STRATA_EVENTSTORE_URL, e.g. esdb://127.0.0.1:2113?tls=false, to run it)', () => {});
} else {
  eventStoreContract(test, 'esdb', async () => {
    const store = createEsdbEventStore({ connectionString: url, namespace: `t${randomBytes(6).toString('hex')}-` });
    return { store, cleanup: () => store.close() };
  });
}
