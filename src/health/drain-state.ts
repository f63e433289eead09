import { Injectable } from '@nestjs/common';

/** Set once shutdown begins: readiness answers 503 so traffic moves elsewhere while requests drain. */
@Injectable()
export class DrainState {
  private draining = false;

  get isDraining(): boolean {
    return this.draining;
  }

  startDraining(): void {
    this.draining = true;
  }
}
