export { MAX_REPLAY_COUNTER, REPLAY_WINDOW_SIZE, ReplayFilter } from "./replay.js";
