import test from 'ava';
import type { GatewayError } from '../../src/errors.js';
import { DeviceLogin } from '../../src/device/auth.js';

const key = Buffer.from('not parsed here');

test('none first, then the offered methods the inventory has credentials for, each once, in preference order', (t) => {
  const login = new DeviceLogin({ username: 'admin', password: 'pw', privateKey: key }, () => t.fail());
  t.like(login.next(null), { type: 'none', username: 'admin' });
  t.like(login.next(['keyboard-interactive', 'password', 'publickey']), { type: 'publickey' });
  t.like(login.next(['keyboard-interactive', 'password', 'publickey']), { type: 'password', password: 'pw' });
  t.like(login.next(['keyboard-interactive', 'password', 'publickey']), { type: 'keyboard-interactive' });
  t.false(login.next(['keyboard-interactive', 'password', 'publickey']));
  t.regex(login.describe(), /tried publickey, password, keyboard-interactive/);
});

test('only what the device offers: no password sent to a keyboard-interactive-only device; partial success continues', (t) => {
  const login = new DeviceLogin({ username: 'admin', password: 'pw', privateKey: key }, () => t.fail());
  login.next(null);
  t.like(login.next(['publickey']), { type: 'publickey' });
  // partial success: the key was accepted, the device wants keyboard-interactive as well
  t.like(login.next(['keyboard-interactive']), { type: 'keyboard-interactive' });
  t.false(login.next(['keyboard-interactive']));
  const none = new DeviceLogin({ username: 'admin', password: 'pw' }, () => t.fail());
  none.next(null);
  t.false(none.next(['hostbased']));
  t.regex(none.describe(), /offers hostbased, and the inventory has no credential/);
});

test('keyboard-interactive prompts: echo-off get the password, echo-on an empty line; a second password prompt gives up', (t) => {
  const gaveUp: GatewayError[] = [];
  const login = new DeviceLogin({ username: 'admin', password: 'pw' }, (why) => gaveUp.push(why));
  login.next(null);
  const method = login.next(['keyboard-interactive']) as { type: string; prompt: (...a: unknown[]) => void };
  t.is(method.type, 'keyboard-interactive');
  const answers: string[][] = [];
  method.prompt(
    '',
    '',
    '',
    [
      { prompt: 'Token name: ', echo: true },
      { prompt: 'Password: ', echo: false },
    ],
    (a: string[]) => answers.push(a),
  );
  t.deepEqual(answers, [['', 'pw']]);
  method.prompt('', 'Wrong password, try again.', '', [{ prompt: 'Password: ', echo: false }], (a: string[]) => answers.push(a));
  t.is(answers.length, 1, 'the same password is not sent again');
  t.is(gaveUp.length, 1);
  t.is(gaveUp[0]!.code, 'GW_ERR_AUTH_FAILED');
});
