import * as assert from "assert";
import { Semaphore } from "../../lib/runner/semaphore";

describe("Semaphore (--jobs, build-host capacity)", () => {
  it("never runs more than its limit, a caller arriving as a slot is handed on included", async () => {
    const semaphore = new Semaphore(2);
    let running = 0;
    let most = 0;
    const task = (ms: number) => async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, ms));
      running--;
    };
    const first = semaphore.run(task(10));
    const rest = [semaphore.run(task(10)), semaphore.run(task(10))];
    await first;
    const late = semaphore.run(task(10));
    await Promise.all([...rest, late]);
    assert.strictEqual(most, 2);
  });

  it("keeps its limit when a caller arrives between a slot's release and the woken waiter's start", async () => {
    // Every microtask delay of the late caller; one of them (a single tick) used to land in that gap, and the late
    // caller and the woken waiter both ran, two tasks under a limit of one.
    for (let ticks = 0; ticks < 8; ticks++) {
      const semaphore = new Semaphore(1);
      let running = 0;
      let most = 0;
      const task = (done: Promise<void>) => async () => {
        running++;
        most = Math.max(most, running);
        await done;
        running--;
      };
      const later = () => new Promise<void>((resolve) => setTimeout(resolve, 5));
      let finishFirst!: () => void;
      const first = semaphore.run(task(new Promise<void>((resolve) => (finishFirst = resolve))));
      const waiter = semaphore.run(task(later()));
      finishFirst();
      let tick: Promise<void> = Promise.resolve();
      for (let i = 0; i < ticks; i++) tick = tick.then(() => undefined);
      const late = tick.then(() => semaphore.run(task(later())));
      await Promise.all([first, waiter, late]);
      assert.strictEqual(most, 1, `a caller ${ticks} microtask(s) after the release`);
    }
  });

  it("runs waiters in arrival order", async () => {
    const semaphore = new Semaphore(1);
    const order: number[] = [];
    await Promise.all(
      [1, 2, 3].map((n) =>
        semaphore.run(async () => {
          order.push(n);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }),
      ),
    );
    assert.deepStrictEqual(order, [1, 2, 3]);
  });
});
