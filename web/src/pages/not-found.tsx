import { PageHeading } from '../components/ui.tsx';
import { Link } from '../router.ts';

export function NotFoundPage() {
  return (
    <section>
      <PageHeading title="Page not found" />
      <p>
        There is nothing here. Go to the <Link href="/models">models</Link>.
      </p>
    </section>
  );
}
