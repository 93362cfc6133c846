/** The rules of a prediction's charge, called directly. */
import { describe, expect, it } from 'vitest';
import { afterPriceChange, CHARGE_ATTEMPTS } from '../../shared/domain/predictions.ts';

describe('afterPriceChange: what a charge does when its price check failed', () => {
  const repriced = { id: 'mdl_1', price: 3 };

  it('charges again at the price that holds now', () => {
    expect(afterPriceChange(1, repriced, 4)).toEqual({ next: 'charge', model: repriced, cost: 12 });
  });

  it('charges nothing again when the version became free', () => {
    expect(afterPriceChange(1, { id: 'mdl_1', price: 0 }, 4)).toEqual({
      next: 'charge',
      model: { id: 'mdl_1', price: 0 },
      cost: 0,
    });
  });

  it('answers not-found once the version is no longer active', () => {
    expect(afterPriceChange(1, undefined, 4)).toEqual({ next: 'not-found' });
  });

  it(`gives up after ${CHARGE_ATTEMPTS} charges, whatever the version is now`, () => {
    expect(CHARGE_ATTEMPTS).toBe(3);
    expect(afterPriceChange(2, repriced, 4).next).toBe('charge');
    expect(afterPriceChange(CHARGE_ATTEMPTS, repriced, 4)).toEqual({ next: 'give-up' });
    expect(afterPriceChange(CHARGE_ATTEMPTS, undefined, 4)).toEqual({ next: 'give-up' });
  });
});
