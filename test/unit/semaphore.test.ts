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
