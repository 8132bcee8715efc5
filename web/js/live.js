// Live messages, as the socket delivers them: in id order, each once.

import { $, chat } from "./state.js";
import { atBottom, messageItem, scrollToBottom, showJumpButton } from "./messages.js";
import { updateOlderControls } from "./history.js";
import { claimBroadcast } from "./outbox.js";
import { stopTyping } from "./typing.js";

const messages = $("messages");

export function showMessage(message) {
  if (message.id <= chat.newestID) return; // delivered in id order: this one is here already
  const stick = atBottom();
  const item = messageItem(message);
  messages.append(item);
  chat.shown.set(message.id, item);
  chat.newestID = message.id;
  if (chat.socket) chat.socket.auth.serverOffset = chat.newestID;
  updateOlderControls();
  stopTyping(message.username);
  claimBroadcast(message, item);
  if (stick || message.username === chat.username) scrollToBottom();
  else showJumpButton();
}
